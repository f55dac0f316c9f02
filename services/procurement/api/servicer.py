"""gRPC servicer of procurement: protobuf in, use case, protobuf out."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from backoffice.procurement.v1 import (
    contract_pb2,
    demand_aggregation_pb2,
    policy_pb2,
    procurement_service_pb2_grpc,
    purchase_order_pb2,
    requisition_pb2,
    supplier_pb2,
)
from backoffice.procurement.v1 import (
    procurement_service_pb2 as pb,
)
from libs.common.errors import FailedPrecondition, InvalidArgument, Violations
from libs.common.filtering import Comparison, FieldType, parse_filter
from libs.common.grpc_types import RpcContext
from libs.common.names import ChildName, OrganisationName, valid_organisation_code
from libs.common.outbox import SETTLE_MARGIN_SECONDS, OutboxRelay
from libs.common.paging import JsonKey, ListRequest
from libs.common.proto_mapping import date_from_proto, mask_paths
from libs.common.reference import reference_organisations
from libs.common.service import ServiceKernel, Transaction
from services.procurement import service
from services.procurement.api import mapping as m
from services.procurement.domain import contract as contract_domain
from services.procurement.domain import purchase_order as order_domain
from services.procurement.domain import supplier as supplier_domain
from services.procurement.domain.demand import DemandLine
from services.procurement.domain.publication import ocds_package, register_csv
from services.procurement.domain.purchase_order import PurchaseOrder
from services.procurement.domain.requisition import Requisition, RequisitionState
from services.procurement.roles import OVERRIDE_BUDGET, READ_BANK_DETAILS
from services.procurement.service import ProcurementUnitOfWork as Uow

_SUPPLIER_FILTERS = {
    "display_name": FieldType.STRING,
    "companies_house_number": FieldType.STRING,
    "vat_number": FieldType.STRING,
    "postcode": FieldType.STRING,
    "sme": FieldType.BOOL,
    "vcse": FieldType.BOOL,
}
_CONTRACT_FILTERS = {
    "supplier": FieldType.STRING,
    "kind": FieldType.ENUM,
    "reference": FieldType.STRING,
    "title": FieldType.STRING,
    "start_date": FieldType.DATE,
    "end_date": FieldType.DATE,
}
_REQUISITION_FILTERS = {"state": FieldType.ENUM, "requester": FieldType.STRING, "create_date": FieldType.DATE}
_ORDER_FILTERS = {
    "state": FieldType.ENUM,
    "supplier": FieldType.STRING,
    "contract": FieldType.STRING,
    "create_date": FieldType.DATE,
}
_NAMES = {o.code: o.display_name for o in reference_organisations()}


def _parent(name: str, collection: str) -> tuple[str, str]:
    """`organisations/{code}/{collection}/{id}` as the parent of a child collection."""
    parsed = ChildName.parse(name, collection, "parent")
    return parsed.organisation, parsed.id


class _Keyed(Protocol):
    @property
    def organisation(self) -> str: ...
    @property
    def id(self) -> str: ...


K = TypeVar("K", bound=_Keyed)


# An enum filter's values: the proto's prefix (optional in a filter) and the domain enum.
EnumValues = tuple[str, type[enum.Enum]]


def _enum_filter(comparisons: list[Comparison], enums: EnumValues | None) -> list[Comparison]:
    """Accept `state = ISSUED` as well as `state = PURCHASE_ORDER_STATE_ISSUED`; a value the
    list does not have is INVALID_ARGUMENT, not an empty page."""
    out: list[Comparison] = []
    for c in comparisons:
        if isinstance(c.value, str) and c.field in ("state", "kind") and enums is not None:
            prefix, values = enums
            value = c.value.removeprefix(prefix)
            if value not in values.__members__:
                raise InvalidArgument.single("filter", f"{c.field} is one of {', '.join(values.__members__)}")
            out.append(type(c)(c.field, c.op, value))
        else:
            out.append(c)
    return out


class ProcurementServicer(procurement_service_pb2_grpc.ProcurementServiceServicer):
    def __init__(self, kernel: ServiceKernel, ocds_prefix: str, relay: OutboxRelay | None = None) -> None:
        self.k = kernel
        self.ocds_prefix = ocds_prefix
        # Delivers the commitment request at once, so the caller hears finance's answer.
        self.relay = relay

    # --- paging shared by the Lists ---------------------------------------------------------

    async def _page(
        self,
        request: ListRequest,
        collection: str,
        filters: dict[str, FieldType],
        enums: EnumValues | None,
        fetch: Callable[[Uow, list[Comparison], JsonKey | None, int], Sequence[K]],
    ) -> tuple[Sequence[K], str]:
        parent = OrganisationName.parse(request.parent, allow_wildcard=True)
        text: str = getattr(request, "filter", "")
        comparisons = _enum_filter(parse_filter(text, filters), enums) if filters else []
        fingerprint = self.k.pager.fingerprint(collection, parent, text)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await (self.k.scope_everywhere() if parent.is_wildcard else self.k.scope_in(parent.code))
        found = await self.k.read(scope, lambda tx: fetch(Uow(tx), comparisons, page.after, page.size + 1))
        return found[: page.size], self.k.pager.next_token(page, found, lambda x: (x.organisation, x.id))

    # --- suppliers ------------------------------------------------------------------------------

    def _supplier(self, s: supplier_domain.Supplier) -> supplier_pb2.Supplier:
        return m.supplier_to_proto(s, with_bank_details=self.k.permits(READ_BANK_DETAILS))

    async def CreateSupplier(
        self, request: pb.CreateSupplierRequest, context: RpcContext
    ) -> supplier_pb2.Supplier:
        parent = OrganisationName.parse(request.parent)
        details = m.supplier_details(request.supplier)
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            supplier_pb2.Supplier,
            lambda tx: self._supplier(
                service.create_supplier(Uow(tx), parent.code, details, request.supplier_id)
            ),
        )

    async def GetSupplier(self, request: pb.GetSupplierRequest, context: RpcContext) -> supplier_pb2.Supplier:
        name = ChildName.parse(request.name, "suppliers")
        scope = await self.k.scope_of(request.name, name.organisation)
        found = await self.k.read(scope, lambda tx: service.get_supplier(Uow(tx), name.organisation, name.id))
        return self._supplier(found)

    async def ListSuppliers(
        self, request: pb.ListSuppliersRequest, context: RpcContext
    ) -> pb.ListSuppliersResponse:
        found, token = await self._page(
            request,
            "suppliers",
            _SUPPLIER_FILTERS,
            None,
            service.list_suppliers,
        )
        with_bank_details = self.k.permits(READ_BANK_DETAILS)
        return pb.ListSuppliersResponse(
            suppliers=[m.supplier_to_proto(s, with_bank_details=with_bank_details) for s in found],
            next_page_token=token,
        )

    async def UpdateSupplier(
        self, request: pb.UpdateSupplierRequest, context: RpcContext
    ) -> supplier_pb2.Supplier:
        name = ChildName.parse(request.supplier.name, "suppliers", "supplier.name")
        paths = mask_paths(
            request.update_mask,
            supplier_domain.UPDATABLE,
            by_name_only=supplier_domain.UPDATED_BY_NAME_ONLY,
        )
        changes = m.supplier_details(request.supplier)
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            supplier_pb2.Supplier,
            lambda tx: self._supplier(
                service.update_supplier(
                    Uow(tx),
                    name.organisation,
                    supplier_id=name.id,
                    changes=changes,
                    paths=paths,
                    etag=request.supplier.etag,
                )
            ),
        )

    async def DebarSupplier(
        self, request: pb.DebarSupplierRequest, context: RpcContext
    ) -> supplier_pb2.Supplier:
        name = ChildName.parse(request.name, "suppliers")
        day = date_from_proto(request.debarment_date, "debarment_date")
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            supplier_pb2.Supplier,
            lambda tx: self._supplier(
                service.debar_supplier(
                    Uow(tx),
                    name.organisation,
                    name.id,
                    reason=request.reason,
                    debarment_date=day,
                    etag=request.etag,
                )
            ),
        )

    async def LiftDebarment(
        self, request: pb.LiftDebarmentRequest, context: RpcContext
    ) -> supplier_pb2.Supplier:
        name = ChildName.parse(request.name, "suppliers")
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            supplier_pb2.Supplier,
            lambda tx: self._supplier(
                service.lift_debarment(
                    Uow(tx), name.organisation, name.id, reason=request.reason, etag=request.etag
                )
            ),
        )

    # --- policy ---------------------------------------------------------------------------------

    @staticmethod
    def _policy_org(name: str, field_path: str) -> str:
        parts = name.split("/")
        if (
            len(parts) != 3
            or parts[0] != "organisations"
            or parts[2] != "procurementPolicy"
            or not valid_organisation_code(parts[1])
        ):
            raise InvalidArgument.single(field_path, "must look like organisations/{code}/procurementPolicy")
        return parts[1]

    async def GetProcurementPolicy(
        self, request: pb.GetProcurementPolicyRequest, context: RpcContext
    ) -> policy_pb2.ProcurementPolicy:
        org = self._policy_org(request.name, "name")
        scope = await self.k.scope_of(request.name, org)
        return m.policy_to_proto(await self.k.read(scope, lambda tx: Uow(tx).policies.get(org)))

    async def UpdateProcurementPolicy(
        self, request: pb.UpdateProcurementPolicyRequest, context: RpcContext
    ) -> policy_pb2.ProcurementPolicy:
        org = self._policy_org(request.procurement_policy.name, "procurement_policy.name")
        paths = mask_paths(request.update_mask, frozenset({"approval_bands", "receipt_tolerance_percent"}))
        bands = m.bands_from_proto(request.procurement_policy) if "approval_bands" in paths else None
        tolerance = (
            request.procurement_policy.receipt_tolerance_percent
            if "receipt_tolerance_percent" in paths
            else None
        )
        scope = await self.k.scope_of(request.procurement_policy.name, org)
        known = self.k.catalogue.roles
        return await self.k.write(
            scope,
            request,
            policy_pb2.ProcurementPolicy,
            lambda tx: m.policy_to_proto(
                service.update_policy(
                    Uow(tx),
                    org,
                    bands=bands,
                    tolerance=tolerance,
                    etag=request.procurement_policy.etag,
                    known_roles=known,
                )
            ),
        )

    # --- contracts ------------------------------------------------------------------------------

    async def CreateContract(
        self, request: pb.CreateContractRequest, context: RpcContext
    ) -> contract_pb2.Contract:
        parent = OrganisationName.parse(request.parent)
        terms = m.contract_terms(request.contract, parent.code)
        scope = await self.k.require_in(parent.code)
        today = self.k.today()
        return await self.k.write(
            scope,
            request,
            contract_pb2.Contract,
            lambda tx: m.contract_to_proto(
                service.create_contract(Uow(tx), parent.code, terms, ocds_prefix=self.ocds_prefix), today
            ),
        )

    async def GetContract(self, request: pb.GetContractRequest, context: RpcContext) -> contract_pb2.Contract:
        name = ChildName.parse(request.name, "contracts")
        # Participants see a contract through its participants list, whoever let it.
        scope = await self.k.scope_everywhere()
        found = await self.k.read(scope, lambda tx: service.get_contract(Uow(tx), name.organisation, name.id))
        return m.contract_to_proto(found, self.k.today())

    async def ListContracts(
        self, request: pb.ListContractsRequest, context: RpcContext
    ) -> pb.ListContractsResponse:
        found, token = await self._page(
            request,
            "contracts",
            _CONTRACT_FILTERS,
            ("CONTRACT_KIND_", contract_domain.ContractKind),
            lambda uow, c, a, n: uow.contracts.page(c, a, n),
        )
        today = self.k.today()
        return pb.ListContractsResponse(
            contracts=[m.contract_to_proto(c, today) for c in found], next_page_token=token
        )

    async def UpdateContract(
        self, request: pb.UpdateContractRequest, context: RpcContext
    ) -> contract_pb2.Contract:
        name = ChildName.parse(request.contract.name, "contracts", "contract.name")
        paths = mask_paths(request.update_mask, contract_domain.UPDATABLE)
        changes = m.contract_terms(request.contract, name.organisation) if paths else None
        scope = await self.k.scope_of(str(name), name.organisation)
        today = self.k.today()
        assert changes is not None
        return await self.k.write(
            scope,
            request,
            contract_pb2.Contract,
            lambda tx: m.contract_to_proto(
                service.update_contract(
                    Uow(tx),
                    name.organisation,
                    name.id,
                    changes=changes,
                    paths=paths,
                    etag=request.contract.etag,
                ),
                today,
            ),
        )

    async def ExportContractsRegister(
        self, request: pb.ExportContractsRegisterRequest, context: RpcContext
    ) -> pb.ExportContractsRegisterResponse:
        parent = OrganisationName.parse(request.parent)
        scope = await self.k.scope_of(request.parent, parent.code)

        def work(tx: Transaction) -> tuple[str, int]:
            uow = Uow(tx)
            contracts = uow.contracts.let_by(parent.code)
            suppliers = {
                c.terms.supplier_id: service.get_supplier(uow, parent.code, c.terms.supplier_id)
                for c in contracts
            }
            return register_csv(contracts, suppliers, _NAMES.get(parent.code, parent.code))

        csv_text, rows = await self.k.read(scope, work)
        return pb.ExportContractsRegisterResponse(csv=csv_text, row_count=rows)

    async def ExportOcdsReleasePackage(
        self, request: pb.ExportOcdsReleasePackageRequest, context: RpcContext
    ) -> pb.ExportOcdsReleasePackageResponse:
        name = ChildName.parse(request.name, "contracts")
        # Publication is the letting organisation's: its register holds the supplier.
        scope = await self.k.scope_of(request.name, name.organisation)

        def work(tx: Transaction) -> tuple[contract_domain.Contract, supplier_domain.Supplier]:
            uow = Uow(tx)
            contract = service.get_contract(uow, name.organisation, name.id)
            return contract, service.get_supplier(uow, name.organisation, contract.terms.supplier_id)

        contract, supplier = await self.k.read(scope, work)
        package = ocds_package(contract, supplier, _NAMES)
        return pb.ExportOcdsReleasePackageResponse(release_package_json=package, ocid=contract.ocid)

    # --- requisitions ---------------------------------------------------------------------------

    async def CreateRequisition(
        self, request: pb.CreateRequisitionRequest, context: RpcContext
    ) -> requisition_pb2.Requisition:
        parent = OrganisationName.parse(request.parent)
        lines = m.lines_from_proto(
            list(request.requisition.lines), "requisition", title=request.requisition.title
        )
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            requisition_pb2.Requisition,
            lambda tx: m.requisition_to_proto(
                service.create_requisition(Uow(tx), parent.code, request.requisition.title, lines)
            ),
        )

    async def GetRequisition(
        self, request: pb.GetRequisitionRequest, context: RpcContext
    ) -> requisition_pb2.Requisition:
        name = ChildName.parse(request.name, "requisitions")
        scope = await self.k.scope_of(request.name, name.organisation)
        return m.requisition_to_proto(
            await self.k.read(scope, lambda tx: service.get_requisition(Uow(tx), name.organisation, name.id))
        )

    async def ListRequisitions(
        self, request: pb.ListRequisitionsRequest, context: RpcContext
    ) -> pb.ListRequisitionsResponse:
        found, token = await self._page(
            request,
            "requisitions",
            _REQUISITION_FILTERS,
            ("REQUISITION_STATE_", RequisitionState),
            lambda uow, c, a, n: uow.requisitions.page(c, a, n),
        )
        return pb.ListRequisitionsResponse(
            requisitions=[m.requisition_to_proto(r) for r in found], next_page_token=token
        )

    async def UpdateRequisition(
        self, request: pb.UpdateRequisitionRequest, context: RpcContext
    ) -> requisition_pb2.Requisition:
        name = ChildName.parse(request.requisition.name, "requisitions", "requisition.name")
        paths = mask_paths(request.update_mask, frozenset({"title", "lines"}))
        title = request.requisition.title if "title" in paths else None
        lines = (
            m.lines_from_proto(list(request.requisition.lines), "requisition", title=title)
            if "lines" in paths
            else None
        )
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            requisition_pb2.Requisition,
            lambda tx: m.requisition_to_proto(
                service.update_requisition(
                    Uow(tx),
                    name.organisation,
                    name.id,
                    title=title,
                    lines=lines,
                    etag=request.requisition.etag,
                )
            ),
        )

    async def _requisition_step(
        self, request: Message, name_text: str, step: Callable[[Uow, ChildName], Requisition]
    ) -> requisition_pb2.Requisition:
        name = ChildName.parse(name_text, "requisitions")
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            requisition_pb2.Requisition,
            lambda tx: m.requisition_to_proto(step(Uow(tx), name)),
        )

    async def SubmitRequisition(
        self, request: pb.SubmitRequisitionRequest, context: RpcContext
    ) -> requisition_pb2.Requisition:
        return await self._requisition_step(
            request,
            request.name,
            lambda uow, name: service.submit_requisition(uow, name.organisation, name.id, request.etag),
        )

    async def ApproveRequisition(
        self, request: pb.ApproveRequisitionRequest, context: RpcContext
    ) -> requisition_pb2.Requisition:
        roles = self.k.caller().roles
        return await self._requisition_step(
            request,
            request.name,
            lambda uow, name: service.decide_requisition(
                uow, name.organisation, name.id, approve=True, roles=roles, reason="", etag=request.etag
            ),
        )

    async def RejectRequisition(
        self, request: pb.RejectRequisitionRequest, context: RpcContext
    ) -> requisition_pb2.Requisition:
        roles = self.k.caller().roles
        return await self._requisition_step(
            request,
            request.name,
            lambda uow, name: service.decide_requisition(
                uow,
                name.organisation,
                name.id,
                approve=False,
                roles=roles,
                reason=request.reason,
                etag=request.etag,
            ),
        )

    async def CancelRequisition(
        self, request: pb.CancelRequisitionRequest, context: RpcContext
    ) -> requisition_pb2.Requisition:
        return await self._requisition_step(
            request,
            request.name,
            lambda uow, name: service.cancel_requisition(uow, name.organisation, name.id, request.etag),
        )

    # --- purchase orders ------------------------------------------------------------------------

    async def CreatePurchaseOrder(
        self, request: pb.CreatePurchaseOrderRequest, context: RpcContext
    ) -> purchase_order_pb2.PurchaseOrder:
        parent = OrganisationName.parse(request.parent)
        po = request.purchase_order
        v = Violations()
        requisition = v.parsed(ChildName.parse, po.requisition, "requisitions", "purchase_order.requisition")
        contract = v.parsed(ChildName.parse, po.contract, "contracts", "purchase_order.contract")
        if requisition is not None and requisition.organisation != parent.code:
            v.add("purchase_order.requisition", "must be a requisition of the parent")
        # With the order's own rules (budget, address, notes), so one answer names them all.
        v.raise_with(
            lambda: service.check_order_fields(parent.code, po.budget, po.delivery_address, po.notes)
        )
        assert requisition is not None and contract is not None
        scope = await self.k.require_in(parent.code)
        today = self.k.today()
        return await self.k.write(
            scope,
            request,
            purchase_order_pb2.PurchaseOrder,
            lambda tx: m.order_to_proto(
                service.create_purchase_order(
                    Uow(tx),
                    parent.code,
                    requisition_id=requisition.id,
                    contract_owner=contract.organisation,
                    contract_id=contract.id,
                    delivery_address=po.delivery_address,
                    notes=po.notes,
                    today=today,
                    budget=po.budget,
                )
            ),
        )

    async def GetPurchaseOrder(
        self, request: pb.GetPurchaseOrderRequest, context: RpcContext
    ) -> purchase_order_pb2.PurchaseOrder:
        name = ChildName.parse(request.name, "purchaseOrders")
        scope = await self.k.scope_of(request.name, name.organisation)
        return m.order_to_proto(
            await self.k.read(
                scope, lambda tx: service.get_purchase_order(Uow(tx), name.organisation, name.id)
            )
        )

    async def ListPurchaseOrders(
        self, request: pb.ListPurchaseOrdersRequest, context: RpcContext
    ) -> pb.ListPurchaseOrdersResponse:
        found, token = await self._page(
            request,
            "purchaseOrders",
            _ORDER_FILTERS,
            ("PURCHASE_ORDER_STATE_", order_domain.PurchaseOrderState),
            lambda uow, c, a, n: uow.orders.page(c, a, n),
        )
        return pb.ListPurchaseOrdersResponse(
            purchase_orders=[m.order_to_proto(o) for o in found], next_page_token=token
        )

    async def UpdatePurchaseOrder(
        self, request: pb.UpdatePurchaseOrderRequest, context: RpcContext
    ) -> purchase_order_pb2.PurchaseOrder:
        name = ChildName.parse(request.purchase_order.name, "purchaseOrders", "purchase_order.name")
        paths = mask_paths(request.update_mask, order_domain.UPDATABLE)
        po = request.purchase_order
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            purchase_order_pb2.PurchaseOrder,
            lambda tx: m.order_to_proto(
                service.amend_purchase_order(
                    Uow(tx),
                    name.organisation,
                    name.id,
                    delivery_address=po.delivery_address if "delivery_address" in paths else None,
                    notes=po.notes if "notes" in paths else None,
                    etag=po.etag,
                )
            ),
        )

    async def _order_step(
        self, request: Message, name_text: str, step: Callable[[Uow, ChildName], PurchaseOrder]
    ) -> purchase_order_pb2.PurchaseOrder:
        name = ChildName.parse(name_text, "purchaseOrders")
        scope = await self.k.scope_of(str(name), name.organisation)
        return await self.k.write(
            scope,
            request,
            purchase_order_pb2.PurchaseOrder,
            lambda tx: m.order_to_proto(step(Uow(tx), name)),
        )

    async def IssuePurchaseOrder(
        self, request: pb.IssuePurchaseOrderRequest, context: RpcContext
    ) -> purchase_order_pb2.PurchaseOrder:
        today = self.k.today()
        may_override = self.k.permits(OVERRIDE_BUDGET)
        # This call asks finance itself, within its deadline: the commitment request is
        # held for it so that no relay pass sends it meanwhile. What finance does not
        # answer in time, the relay delivers later; the order stays PENDING_COMMITMENT.
        relay = self.relay if self.relay is not None and self.relay.peers.configured else None
        window = self._delivery_window(relay, context)
        started = time.monotonic()
        held: list[str] = []

        def issue(uow: Uow, name: ChildName) -> PurchaseOrder:
            held.clear()  # an attempt that fails publishes nothing that commits
            # Held a little beyond the window, for applying finance's answer.
            uow.tx.outbox.hold(window + SETTLE_MARGIN_SECONDS if window > 0 else 0.0)
            issued = service.issue_purchase_order(
                uow,
                name.organisation,
                name.id,
                etag=request.etag,
                today=today,
                override_reason=request.budget_override_reason,
                may_override=may_override,
            )
            held.extend(uow.tx.outbox.published)
            return issued

        order = await self._order_step(request, request.name, issue)
        pending = purchase_order_pb2.PURCHASE_ORDER_STATE_PENDING_COMMITMENT
        if order.state != pending or relay is None:
            return order
        # Only while the hold lasts: it began after `started`, when the event was published,
        # and once it ends a relay pass, in any worker, may claim the event, and an answer
        # this call got after that would be set aside for the relay's.
        within = min(self._delivery_window(relay, context), window - (time.monotonic() - started))
        settled = await relay.deliver_key(order.name, within, held) if within > 0 else []
        # The order as finance's answer left it, committed in the relay's transaction; read
        # again only when this call did not deliver the answer itself.
        answered = [s for s in settled if isinstance(s, order_domain.PurchaseOrder) and s.name == order.name]
        if answered:
            current = answered[-1]
        else:
            name = ChildName.parse(order.name, "purchaseOrders")
            scope = await self.k.scope_of(order.name, name.organisation)
            current = await self.k.read(
                scope, lambda tx: service.get_purchase_order(Uow(tx), name.organisation, name.id)
            )
        if current.state is order_domain.PurchaseOrderState.DRAFT and current.commitment_refusal:
            finance_reason = current.commitment_refusal.partition(":")[0]
            if finance_reason in service.ORDERING_REFUSALS:
                raise FailedPrecondition(
                    f"{current.name} was not issued: {current.commitment_refusal}",
                    reason=finance_reason,
                    metadata={"purchase_order": current.name, "contract": current.contract},
                )
            raise FailedPrecondition(
                f"{current.name} was not issued: finance refused the commitment "
                f"({current.commitment_refusal})",
                reason="BUDGET_EXCEEDED" if finance_reason == "BUDGET_EXCEEDED" else "COMMITMENT_REFUSED",
                metadata={
                    "purchase_order": current.name,
                    "budget": current.budget,
                    "finance_reason": finance_reason,
                },
            )
        return m.order_to_proto(current)

    @staticmethod
    def _delivery_window(relay: OutboxRelay | None, context: RpcContext) -> float:
        """Seconds this call may spend delivering its own event (none without a relay)."""
        if relay is None:
            return 0.0
        within = relay.settings.timeout_seconds
        remaining = context.time_remaining()
        if remaining is not None:
            within = min(within, max(remaining - 0.5, 0.0))
        return within

    async def CancelPurchaseOrder(
        self, request: pb.CancelPurchaseOrderRequest, context: RpcContext
    ) -> purchase_order_pb2.PurchaseOrder:
        return await self._order_step(
            request,
            request.name,
            lambda uow, name: service.end_purchase_order(
                uow, name.organisation, name.id, cancel=True, reason=request.reason, etag=request.etag
            ),
        )

    async def ClosePurchaseOrder(
        self, request: pb.ClosePurchaseOrderRequest, context: RpcContext
    ) -> purchase_order_pb2.PurchaseOrder:
        return await self._order_step(
            request,
            request.name,
            lambda uow, name: service.end_purchase_order(
                uow, name.organisation, name.id, cancel=False, reason=request.reason, etag=request.etag
            ),
        )

    async def CreateGoodsReceipt(
        self, request: pb.CreateGoodsReceiptRequest, context: RpcContext
    ) -> purchase_order_pb2.GoodsReceipt:
        org, order_id = _parent(request.parent, "purchaseOrders")
        lines = m.receipt_lines(request.goods_receipt)
        day = date_from_proto(request.goods_receipt.receipt_date, "goods_receipt.receipt_date")
        scope = await self.k.scope_of(request.parent, org)
        today = self.k.today()
        return await self.k.write(
            scope,
            request,
            purchase_order_pb2.GoodsReceipt,
            lambda tx: m.receipt_to_proto(
                service.receive_goods(
                    Uow(tx),
                    org,
                    order_id,
                    receipt_date=day,
                    lines=lines,
                    note=request.goods_receipt.note,
                    today=today,
                )
            ),
        )

    async def ListGoodsReceipts(
        self, request: pb.ListGoodsReceiptsRequest, context: RpcContext
    ) -> pb.ListGoodsReceiptsResponse:
        org, order_id = _parent(request.parent, "purchaseOrders")
        fingerprint = self.k.pager.fingerprint("goodsReceipts", request.parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_of(request.parent, org)

        def work(tx: Transaction) -> list[order_domain.GoodsReceipt]:
            uow = Uow(tx)
            service.get_purchase_order(uow, org, order_id)
            return uow.receipts.page(org, order_id, page.after, page.size + 1)

        found = await self.k.read(scope, work)
        response = pb.ListGoodsReceiptsResponse(
            goods_receipts=[m.receipt_to_proto(g) for g in found[: page.size]]
        )
        response.next_page_token = self.k.pager.next_token(page, found, lambda x: (x.id,))
        return response

    # --- collaborative procurement --------------------------------------------------------------

    async def CreateDemandAggregation(
        self, request: pb.CreateDemandAggregationRequest, context: RpcContext
    ) -> demand_aggregation_pb2.DemandAggregation:
        parent = OrganisationName.parse(request.parent)
        a = request.demand_aggregation
        v = Violations()
        invited = m.organisation_codes(list(a.invited), "demand_aggregation.invited", v)
        v.raise_if_any()
        scope = await self.k.require_in(parent.code)
        return await self.k.write(
            scope,
            request,
            demand_aggregation_pb2.DemandAggregation,
            lambda tx: m.aggregation_to_proto(
                service.create_aggregation(
                    Uow(tx), parent.code, title=a.title, cpv_code=a.cpv_code, invited=invited
                )
            ),
        )

    async def GetDemandAggregation(
        self, request: pb.GetDemandAggregationRequest, context: RpcContext
    ) -> demand_aggregation_pb2.DemandAggregation:
        name = ChildName.parse(request.name, "demandAggregations")
        scope = await self.k.scope_everywhere()
        return m.aggregation_to_proto(
            await self.k.read(scope, lambda tx: service.get_aggregation(Uow(tx), name.organisation, name.id))
        )

    async def ListDemandAggregations(
        self, request: pb.ListDemandAggregationsRequest, context: RpcContext
    ) -> pb.ListDemandAggregationsResponse:
        found, token = await self._page(
            request, "demandAggregations", {}, None, lambda uow, c, a, n: uow.demand.page(a, n)
        )
        return pb.ListDemandAggregationsResponse(
            demand_aggregations=[m.aggregation_to_proto(x) for x in found], next_page_token=token
        )

    async def CreateDemandLine(
        self, request: pb.CreateDemandLineRequest, context: RpcContext
    ) -> demand_aggregation_pb2.DemandLine:
        lead, aggregation_id = _parent(request.parent, "demandAggregations")
        quantity, price = m.demand_values(request.demand_line)
        contributor = (
            OrganisationName.parse(request.acting_for, "acting_for").code
            if request.acting_for
            else self.k.caller().organisation
        )
        scope = await self.k.require_in(contributor)
        return await self.k.write(
            scope,
            request,
            demand_aggregation_pb2.DemandLine,
            lambda tx: m.demand_line_to_proto(
                service.add_demand(
                    Uow(tx),
                    lead,
                    aggregation_id,
                    contributor=contributor,
                    description=request.demand_line.description,
                    quantity=quantity,
                    price=price,
                )
            ),
        )

    async def ListDemandLines(
        self, request: pb.ListDemandLinesRequest, context: RpcContext
    ) -> pb.ListDemandLinesResponse:
        lead, aggregation_id = _parent(request.parent, "demandAggregations")
        fingerprint = self.k.pager.fingerprint("demandLines", request.parent)
        page = self.k.pager.request(request.page_size, request.page_token, fingerprint)
        scope = await self.k.scope_everywhere()

        def work(tx: Transaction) -> list[DemandLine]:
            uow = Uow(tx)
            service.get_aggregation(uow, lead, aggregation_id)
            return uow.demand.lines(lead, aggregation_id, page.after, page.size + 1)

        found = await self.k.read(scope, work)
        response = pb.ListDemandLinesResponse(
            demand_lines=[m.demand_line_to_proto(x) for x in found[: page.size]]
        )
        response.next_page_token = self.k.pager.next_token(page, found, lambda x: (x.id,))
        return response

    async def CloseDemandAggregation(
        self, request: pb.CloseDemandAggregationRequest, context: RpcContext
    ) -> demand_aggregation_pb2.DemandAggregation:
        name = ChildName.parse(request.name, "demandAggregations")
        # Its CPV code and participants come from the aggregation when it closes.
        terms = m.contract_terms(request.contract, name.organisation)
        scope = await self.k.scope_of(request.name, name.organisation)
        return await self.k.write(
            scope,
            request,
            demand_aggregation_pb2.DemandAggregation,
            lambda tx: m.aggregation_to_proto(
                service.close_aggregation(
                    Uow(tx),
                    name.organisation,
                    name.id,
                    terms=terms,
                    etag=request.etag,
                    ocds_prefix=self.ocds_prefix,
                )
            ),
        )
