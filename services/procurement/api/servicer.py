"""gRPC servicer of procurement: protobuf in, use case, protobuf out."""

from __future__ import annotations

from backoffice.procurement.v1 import (
    procurement_service_pb2 as pb,
)
from backoffice.procurement.v1 import (
    procurement_service_pb2_grpc,
    supplier_pb2,
)
from libs.common.filtering import FieldType, parse_filter
from libs.common.grpc_types import RpcContext
from libs.common.names import ChildName, OrganisationName
from libs.common.proto_mapping import audit_metadata, mask_paths
from libs.common.service import ServiceKernel
from services.procurement import service
from services.procurement.domain.supplier import UPDATABLE, Supplier, SupplierDetails

_SUPPLIER_FILTERS = {
    "display_name": FieldType.STRING,
    "companies_house_number": FieldType.STRING,
    "vat_number": FieldType.STRING,
    "postcode": FieldType.STRING,
    "sme": FieldType.BOOL,
    "vcse": FieldType.BOOL,
}


def supplier_to_proto(s: Supplier) -> supplier_pb2.Supplier:
    d = s.details
    return supplier_pb2.Supplier(
        name=s.name,
        display_name=d.display_name,
        companies_house_number=d.companies_house_number,
        vat_number=d.vat_number,
        address_lines=list(d.address_lines),
        postcode=d.postcode,
        sme=d.sme,
        vcse=d.vcse,
        audit=audit_metadata(s.info),
        etag=s.info.etag,
    )


def supplier_details(msg: supplier_pb2.Supplier) -> SupplierDetails:
    return SupplierDetails(
        display_name=msg.display_name,
        companies_house_number=msg.companies_house_number,
        vat_number=msg.vat_number,
        address_lines=tuple(msg.address_lines),
        postcode=msg.postcode,
        sme=msg.sme,
        vcse=msg.vcse,
    )


class ProcurementServicer(procurement_service_pb2_grpc.ProcurementServiceServicer):
    def __init__(self, kernel: ServiceKernel) -> None:
        self.k = kernel

    async def CreateSupplier(
        self, request: pb.CreateSupplierRequest, context: RpcContext
    ) -> supplier_pb2.Supplier:
        parent = OrganisationName.parse(request.parent)
        details = supplier_details(request.supplier)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            supplier_pb2.Supplier,
            lambda tx: supplier_to_proto(
                service.create_supplier(
                    service.ProcurementUnitOfWork(tx), parent.code, details, request.supplier_id
                )
            ),
        )

    async def GetSupplier(self, request: pb.GetSupplierRequest, context: RpcContext) -> supplier_pb2.Supplier:
        name = ChildName.parse(request.name, "suppliers")
        scope = await self.k.scope_of(request.name, name.organisation)
        found = await self.k.read(
            scope,
            lambda tx: service.get_supplier(service.ProcurementUnitOfWork(tx), name.organisation, name.id),
        )
        return supplier_to_proto(found)

    async def ListSuppliers(
        self, request: pb.ListSuppliersRequest, context: RpcContext
    ) -> pb.ListSuppliersResponse:
        parent = OrganisationName.parse(request.parent, allow_wildcard=True)
        comparisons = parse_filter(request.filter, _SUPPLIER_FILTERS)
        fingerprint = self.k.pager.fingerprint("suppliers", parent, request.filter)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await (self.k.scope_everywhere() if parent.is_wildcard else self.k.scope_in(parent.code))
        found = await self.k.read(
            scope,
            lambda tx: service.list_suppliers(
                service.ProcurementUnitOfWork(tx), comparisons, page.after, page.size + 1
            ),
        )
        response = pb.ListSuppliersResponse(suppliers=[supplier_to_proto(s) for s in found[: page.size]])
        if len(found) > page.size:
            last = found[page.size - 1]
            response.next_page_token = self.k.pager.token_after((last.organisation, last.id), fingerprint)
        return response

    async def UpdateSupplier(
        self, request: pb.UpdateSupplierRequest, context: RpcContext
    ) -> supplier_pb2.Supplier:
        name = ChildName.parse(request.supplier.name, "suppliers", "supplier.name")
        paths = mask_paths(request.update_mask, UPDATABLE)
        changes = supplier_details(request.supplier)
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            supplier_pb2.Supplier,
            lambda tx: supplier_to_proto(
                service.update_supplier(
                    service.ProcurementUnitOfWork(tx),
                    name.organisation,
                    supplier_id=name.id,
                    changes=changes,
                    paths=paths,
                    etag=request.supplier.etag,
                )
            ),
        )
