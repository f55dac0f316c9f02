"""The web admin console: Starlette routes that map HTTP to gRPC calls made with the
signed-in user's bearer token, rendered server-side with Jinja2.

It holds no data of its own: every page is what the services answered for this user, and
every refusal is theirs (google.rpc.Status: code, message, reason, field violations),
shown as it came. The only state here is the sign-in cookie in the browser and, in memory,
the progress of long jobs (`services/console/jobs.py`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import jwt
from google.protobuf import json_format
from google.protobuf.message import Message
from google.type import date_pb2, money_pb2
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backoffice.common.v1 import organisation_pb2
from backoffice.directory.v1 import agreement_pb2
from backoffice.directory.v1 import directory_service_pb2 as dpb
from backoffice.finance.v1 import finance_service_pb2 as fpb
from backoffice.finance.v1 import payables_pb2, reports_pb2
from backoffice.hr.v1 import hr_service_pb2 as hpb
from backoffice.operations.v1 import operations_service_pb2 as opb
from backoffice.procurement.v1 import procurement_service_pb2 as ppb
from backoffice.procurement.v1 import purchase_order_pb2, requisition_pb2, supplier_pb2
from libs.common.asgi import AsgiServing, serve_asgi
from libs.common.auth import TokenIssuer
from libs.common.clock import today_london
from libs.common.functions import AGREEABLE_FUNCTIONS, BUSINESS_FUNCTIONS
from libs.common.logging import get_logger
from services.console import charts
from services.console.clients import DEFAULT_TIMEOUT_SECONDS, SERVICES, Backends, Refusal, Session
from services.console.jobs import DONE, Job, Jobs, owner_of

log = get_logger("backoffice.console")

HERE = Path(__file__).parent
SESSION_COOKIE = "bo_session"
CSRF_COOKIE = "bo_csrf"
# Roles offered on the development sign-in page (a free-text field takes any others).
STAFF_ROLES = (
    "directory.admin",
    "procurement.commercial",
    "procurement.budget_holder",
    "procurement.buyer",
    "finance.payables",
    "finance.cfo",
    "hr.workforce_planner",
    "operations.staff",
    "operations.auditor",
)
AGREEMENT_KINDS = ("SERVICE_PROVISION", "DATA_SHARING")
ORGANISATION_KINDS = ("FORCE", "PARTNER", "SHARED_SERVICE_UNIT", "NATIONAL_BODY")
# The spend report's file formats, as the form names them (SpendFileFormat's values).
SPEND_FORMATS = tuple(
    v.name.removeprefix("SPEND_FILE_FORMAT_")
    for v in reports_pb2.SpendFileFormat.DESCRIPTOR.values
    if v.number != reports_pb2.SPEND_FILE_FORMAT_UNSPECIFIED
)
REPORTS = {
    "spend": "Spend over £500 (transparency, CSV)",
    "contracts": "Contracts register (CSV)",
    "payments": "Payments compliance (prompt payment, JSON)",
    "workforce": "Workforce statistics (Home Office return, JSON)",
    "paygap": "Gender pay gap (JSON)",
}


def bad_form(field: str, description: str) -> Refusal:
    """A form the console cannot turn into a request (the services never see it)."""
    return Refusal(
        "INVALID_ARGUMENT",
        "the form is not complete",
        reason="BAD_FORM",
        violations=[(field, description)],
        http_status=400,
    )


def form_date(form: Mapping[str, Any], field: str, *, required: bool = True) -> date_pb2.Date | None:
    text = str(form.get(field, "")).strip()
    if not text:
        if required:
            raise bad_form(field, "a date (YYYY-MM-DD) is required")
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as err:
        raise bad_form(field, f"{text!r} is not a date (YYYY-MM-DD)") from err
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def form_text(form: Mapping[str, Any], field: str) -> str:
    return str(form.get(field, "")).strip()


def form_as_sent(form: FormData, *lists: str) -> dict[str, Any]:
    """A refused form's values, to show it again as it was sent: each field's value, and for
    each field named in `lists` (checkboxes sharing a name) every value sent, as a list
    (`dict(form)` keeps only the last)."""
    shown: dict[str, Any] = dict(form)
    for name in lists:
        shown[name] = [v for v in form.getlist(name) if isinstance(v, str)]
    return shown


# --- what the templates show ------------------------------------------------------------------


def money(value: money_pb2.Money | None) -> str:
    if value is None or (not value.currency_code and not value.units and not value.nanos):
        return ""
    amount = Decimal(value.units) + Decimal(value.nanos) / Decimal(10**9)
    sign = "-" if amount < 0 else ""
    symbol = "£" if value.currency_code in ("GBP", "") else f"{value.currency_code} "
    return f"{sign}{symbol}{abs(amount):,.2f}"


def enum_label(message: Message, field: str) -> str:
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    assert descriptor is not None
    name = descriptor.values_by_number[getattr(message, field)].name
    prefix = "".join(f"_{c}" if c.isupper() else c.upper() for c in descriptor.name).lstrip("_")
    return name.removeprefix(prefix + "_").replace("_", " ").capitalize()


def date_text(value: date_pb2.Date | None) -> str:
    if value is None or not value.year:
        return ""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def organisation_of(name: str) -> str:
    parts = name.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "organisations" else ""


@dataclass(frozen=True)
class User:
    token: str
    subject: str
    organisation: str
    roles: tuple[str, ...]
    via_header: bool

    @property
    def owner(self) -> str:
        return owner_of(self.token)


def _user(token: str, via_header: bool) -> User:
    # For display only: the services verify the token on every call; the console cannot.
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    return User(
        token=token,
        subject=str(claims.get("sub", "")),
        organisation=str(claims.get("org", "")),
        roles=tuple(str(r) for r in claims.get("roles", ()) or ()),
        via_header=via_header,
    )


Handler = Callable[[Request, User], Awaitable[Response]]


class Console:
    def __init__(
        self,
        backends: Backends,
        *,
        issuer: TokenIssuer | None = None,
        secure_cookies: bool | None = None,
    ) -> None:
        self.backends = backends
        # Present only when development sign-in is enabled.
        self.issuer = issuer
        # Cookies sent over HTTPS only; unset, unless development sign-in is on (the rule of
        # Settings.console_secure_cookies_enabled).
        self.secure_cookies = issuer is None if secure_cookies is None else secure_cookies
        self.jobs = Jobs()
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(money=money, date=date_text, org=organisation_of)
        self.templates.globals.update(enum_label=enum_label, new_request_id=lambda: str(uuid.uuid4()))

    async def close(self) -> None:
        await self.jobs.close()
        await self.backends.close()

    # --- plumbing ------------------------------------------------------------------------------

    def asgi(self) -> Starlette:
        signed = self._signed_in
        return Starlette(
            routes=[
                Route("/healthz", self.health, methods=["GET"]),
                Route("/sign-in", self.sign_in_page, methods=["GET"]),
                Route("/sign-in", self.sign_in, methods=["POST"]),
                Route("/sign-out", self.sign_out, methods=["POST"]),
                Route("/", signed(self.home), methods=["GET"]),
                Route("/requisitions/approve", signed(self.approve_requisition), methods=["POST"]),
                Route("/organisations", signed(self.organisations), methods=["GET"]),
                Route("/organisations", signed(self.create_organisation), methods=["POST"]),
                Route("/organisations/{code}", signed(self.organisation), methods=["GET"]),
                Route("/agreements", signed(self.create_agreement), methods=["POST"]),
                Route("/suppliers", signed(self.suppliers), methods=["GET"]),
                Route("/suppliers", signed(self.create_supplier), methods=["POST"]),
                Route("/suppliers/debar", signed(self.debar_supplier), methods=["POST"]),
                Route("/payments", signed(self.payments), methods=["GET"]),
                Route("/payments", signed(self.run_payments), methods=["POST"]),
                Route("/reports", signed(self.reports), methods=["GET"]),
                Route("/reports", signed(self.export_report), methods=["POST"]),
                Route("/jobs/{job}", signed(self.job), methods=["GET"]),
                Route("/jobs/{job}/download", signed(self.download), methods=["GET"]),
                Route("/charts", signed(self.charts), methods=["GET"]),
                Route("/operations", signed(self.operations), methods=["GET"]),
                Route("/operations/events", signed(self.release_event), methods=["POST"]),
                Route("/operations/audit", signed(self.verify_audit), methods=["POST"]),
                Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            ]
        )

    def _user_of(self, request: Request) -> User | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and header[7:].strip():
            return _user(header[7:].strip(), via_header=True)
        token = request.cookies.get(SESSION_COOKIE, "")
        return _user(token, via_header=False) if token else None

    def _signed_in(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            user = self._user_of(request)
            if user is None:
                return RedirectResponse("/sign-in", status_code=303)
            if request.method == "POST":
                form = await request.form()
                if not self._csrf_ok(request, form):
                    return self.render(
                        request,
                        "refused.html",
                        user,
                        status=403,
                        refusal=Refusal(
                            "PERMISSION_DENIED",
                            "this form is stale or did not come from the console; "
                            "reload the page and try again",
                            reason="CSRF_TOKEN_INVALID",
                            http_status=403,
                        ),
                    )
            return await handler(request, user)

        return endpoint

    @staticmethod
    def _csrf_ok(request: Request, form: FormData) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = form.get("csrf", "")
        return bool(cookie) and isinstance(sent, str) and secrets.compare_digest(cookie, sent)

    def render(
        self, request: Request, template: str, user: User | None, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        body = self.templates.get_template(template).render(
            user=user,
            csrf=csrf,
            path=request.url.path,
            notice=request.query_params.get("done", ""),
            dev_sign_in=self.issuer is not None,
            **context,
        )
        response = HTMLResponse(body, status_code=status)
        if CSRF_COOKIE not in request.cookies:
            self._cookie(response, CSRF_COOKIE, csrf)
        response.headers["cache-control"] = "no-store"
        response.headers["x-frame-options"] = "DENY"
        response.headers["content-security-policy"] = (
            "default-src 'self'; style-src 'self'; img-src 'self' data:; script-src 'none'; "
            "form-action 'self'; frame-ancestors 'none'"
        )
        return response

    def _cookie(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
            path="/",
        )

    @staticmethod
    def _done(path: str, message: str) -> RedirectResponse:
        from urllib.parse import urlencode

        joiner = "&" if "?" in path else "?"
        return RedirectResponse(f"{path}{joiner}{urlencode({'done': message})}", status_code=303)

    def session(self, user: User) -> Session:
        return self.backends.session(user.token, str(uuid.uuid4()))

    async def health(self, request: Request) -> Response:
        return Response('{"status": "SERVING"}', media_type="application/json")

    # --- sign-in -------------------------------------------------------------------------------

    async def sign_in_page(self, request: Request, refusal: Refusal | None = None) -> Response:
        return self.render(
            request,
            "sign_in.html",
            self._user_of(request),
            status=refusal.http_status if refusal else 200,
            roles=STAFF_ROLES,
            refusal=refusal,
        )

    async def sign_in(self, request: Request) -> Response:
        form = await request.form()
        if not self._csrf_ok(request, form):
            return await self.sign_in_page(
                request,
                Refusal(
                    "PERMISSION_DENIED",
                    "the sign-in form is stale; reload the page and try again",
                    reason="CSRF_TOKEN_INVALID",
                    http_status=403,
                ),
            )
        mode = form_text(form, "mode")
        if mode == "development":
            if self.issuer is None:
                return await self.sign_in_page(
                    request,
                    Refusal(
                        "PERMISSION_DENIED",
                        "development sign-in is switched off here; sign in with your organisation's token",
                        reason="DEV_SIGN_IN_DISABLED",
                        http_status=403,
                    ),
                )
            organisation, subject = form_text(form, "organisation"), form_text(form, "subject")
            roles = [r for r in form.getlist("roles") if isinstance(r, str) and r]
            roles += form_text(form, "other_roles").replace(",", " ").split()
            if not organisation:
                return await self.sign_in_page(request, bad_form("organisation", "say which organisation"))
            if not subject:
                return await self.sign_in_page(request, bad_form("subject", "say who you are"))
            token = self.issuer.mint(subject, organisation, roles, ttl=dt.timedelta(hours=8))
        else:
            token = form_text(form, "token").removeprefix("Bearer ").strip()
            if not token:
                return await self.sign_in_page(
                    request, bad_form("token", "paste the token your identity provider issued")
                )
        response = RedirectResponse("/", status_code=303)
        self._cookie(response, SESSION_COOKIE, token, max_age=8 * 3600)
        # A new CSRF token for the new session.
        self._cookie(response, CSRF_COOKIE, secrets.token_urlsafe(32))
        return response

    async def sign_out(self, request: Request) -> Response:
        form = await request.form()
        response = RedirectResponse("/sign-in", status_code=303)
        if self._csrf_ok(request, form):
            for name in (SESSION_COOKIE, CSRF_COOKIE):
                response.delete_cookie(
                    name, path="/", secure=self.secure_cookies, httponly=True, samesite="strict"
                )
        return response

    # --- awaiting action -------------------------------------------------------------------------

    async def _section(self, work: Awaitable[Any]) -> tuple[Any, Refusal | None]:
        try:
            return await work, None
        except Refusal as refusal:
            return None, refusal

    async def home(self, request: Request, user: User, refusal: Refusal | None = None) -> Response:
        s = self.session(user)
        p = self.backends.procurement
        everywhere = "organisations/-"
        (requisitions, r_err), (pending, p_err), (drafts, d_err), (invoices, i_err) = await asyncio.gather(
            self._section(
                s.call(
                    p.ListRequisitions,
                    ppb.ListRequisitionsRequest(parent=everywhere, filter="state = SUBMITTED", page_size=100),
                )
            ),
            self._section(
                s.call(
                    p.ListPurchaseOrders,
                    ppb.ListPurchaseOrdersRequest(
                        parent=everywhere, filter="state = PENDING_COMMITMENT", page_size=100
                    ),
                )
            ),
            self._section(
                s.call(
                    p.ListPurchaseOrders,
                    ppb.ListPurchaseOrdersRequest(parent=everywhere, filter="state = DRAFT", page_size=100),
                )
            ),
            self._section(
                s.call(
                    self.backends.finance.ListInvoices,
                    fpb.ListInvoicesRequest(
                        parent=everywhere, state=payables_pb2.INVOICE_STATE_RECEIVED, page_size=100
                    ),
                )
            ),
        )
        return self.render(
            request,
            "home.html",
            user,
            status=refusal.http_status if refusal else 200,
            refusal=refusal,
            requisitions=requisitions.requisitions if requisitions else [],
            requisitions_refusal=r_err,
            pending_orders=pending.purchase_orders if pending else [],
            pending_refusal=p_err,
            draft_orders=drafts.purchase_orders if drafts else [],
            drafts_refusal=d_err,
            invoices=invoices.invoices if invoices else [],
            invoices_refusal=i_err,
            payables_pb2=payables_pb2,
            requisition_pb2=requisition_pb2,
            purchase_order_pb2=purchase_order_pb2,
        )

    async def approve_requisition(self, request: Request, user: User) -> Response:
        form = await request.form()
        name = form_text(form, "name")
        try:
            approved = await self.session(user).call(
                self.backends.procurement.ApproveRequisition,
                ppb.ApproveRequisitionRequest(name=name, etag=form_text(form, "etag")),
                "procurement",
            )
        except Refusal as refusal:
            return await self.home(request, user, refusal)
        return self._done("/", f"Approved {approved.title} ({approved.name})")

    # --- organisations and agreements -----------------------------------------------------------

    async def organisations(
        self, request: Request, user: User, refusal: Refusal | None = None, form: Any = None
    ) -> Response:
        page_token = request.query_params.get("page_token", "")
        found, list_refusal = await self._section(
            self.session(user).call(
                self.backends.directory.ListOrganisations,
                dpb.ListOrganisationsRequest(page_size=100, page_token=page_token),
            )
        )
        return self.render(
            request,
            "organisations.html",
            user,
            status=refusal.http_status if refusal else 200,
            refusal=refusal or list_refusal,
            organisations=found.organisations if found else [],
            next_page_token=found.next_page_token if found else "",
            kinds=ORGANISATION_KINDS,
            form=form or {},
        )

    async def create_organisation(self, request: Request, user: User) -> Response:
        form = await request.form()
        code = form_text(form, "code")
        kind = form_text(form, "kind")
        organisation = organisation_pb2.Organisation(
            name=f"organisations/{code}",
            display_name=form_text(form, "display_name"),
            kind=organisation_pb2.OrganisationKind.Value(
                f"ORGANISATION_KIND_{kind if kind in ORGANISATION_KINDS else 'UNSPECIFIED'}"
            ),
            country=form_text(form, "country"),
        )
        try:
            created = await self.session(user).call(
                self.backends.directory.CreateOrganisation,
                dpb.CreateOrganisationRequest(
                    organisation=organisation, request_id=form_text(form, "request_id")
                ),
                "directory",
            )
        except Refusal as refusal:
            return await self.organisations(request, user, refusal, form_as_sent(form))
        return self._done(f"/organisations/{created.code}", f"Onboarded {created.display_name}")

    async def organisation(
        self, request: Request, user: User, refusal: Refusal | None = None, form: Any = None
    ) -> Response:
        code = request.path_params["code"]
        s = self.session(user)
        (found, o_err), (agreements, a_err) = await asyncio.gather(
            self._section(
                s.call(
                    self.backends.directory.GetOrganisation,
                    dpb.GetOrganisationRequest(name=f"organisations/{code}"),
                )
            ),
            self._section(
                s.call(
                    self.backends.directory.ListAgreements,
                    dpb.ListAgreementsRequest(parent=f"organisations/{code}", page_size=100),
                )
            ),
        )
        first = refusal or o_err
        return self.render(
            request,
            "organisation.html",
            user,
            status=first.http_status if first else 200,
            refusal=first,
            agreements_refusal=a_err,
            code=code,
            organisation=found,
            agreements=agreements.agreements if agreements else [],
            functions={f: BUSINESS_FUNCTIONS[f] for f in sorted(AGREEABLE_FUNCTIONS)},
            form=form or {},
            today=today_london().isoformat(),  # a form default: the business's day
        )

    async def create_agreement(self, request: Request, user: User) -> Response:
        form = await request.form()
        back = form_text(form, "back") or form_text(form, "organisation")
        request.scope["path_params"] = {"code": back}
        try:
            kind = form_text(form, "kind")
            agreement = agreement_pb2.Agreement(
                display_name=form_text(form, "display_name"),
                kind=agreement_pb2.AgreementKind.Value(
                    f"AGREEMENT_KIND_{kind if kind in AGREEMENT_KINDS else 'UNSPECIFIED'}"
                ),
                organisation=f"organisations/{form_text(form, 'organisation')}",
                counterparty=f"organisations/{form_text(form, 'counterparty')}",
                functions=[f for f in form.getlist("functions") if isinstance(f, str)],
            )
            start = form_date(form, "start_date")
            end = form_date(form, "end_date", required=False)
            assert start is not None
            agreement.start_date.CopyFrom(start)
            if end is not None:
                agreement.end_date.CopyFrom(end)
            created = await self.session(user).call(
                self.backends.directory.CreateAgreement,
                dpb.CreateAgreementRequest(agreement=agreement, request_id=form_text(form, "request_id")),
                "directory",
            )
        except Refusal as refusal:
            return await self.organisation(request, user, refusal, form_as_sent(form, "functions"))
        return self._done(f"/organisations/{back}", f"Recorded agreement {created.display_name}")

    # --- the supplier register ------------------------------------------------------------------

    async def suppliers(
        self, request: Request, user: User, refusal: Refusal | None = None, form: Any = None
    ) -> Response:
        org = request.query_params.get("org") or user.organisation
        text = request.query_params.get("q", "").strip()
        query = f'display_name:"{text}"' if text and '"' not in text else ""
        found, list_refusal = await self._section(
            self.session(user).call(
                self.backends.procurement.ListSuppliers,
                ppb.ListSuppliersRequest(
                    parent=f"organisations/{org}",
                    filter=query,
                    page_size=100,
                    page_token=request.query_params.get("page_token", ""),
                ),
            )
        )
        return self.render(
            request,
            "suppliers.html",
            user,
            status=refusal.http_status if refusal else 200,
            refusal=refusal or list_refusal,
            org=org,
            q=text,
            suppliers=found.suppliers if found else [],
            next_page_token=found.next_page_token if found else "",
            form=form or {},
            today=today_london().isoformat(),  # a form default: the business's day
        )

    async def create_supplier(self, request: Request, user: User) -> Response:
        form = await request.form()
        org = form_text(form, "org") or user.organisation
        request.scope["query_string"] = f"org={org}".encode()
        supplier = supplier_pb2.Supplier(
            display_name=form_text(form, "display_name"),
            companies_house_number=form_text(form, "companies_house_number"),
            vat_number=form_text(form, "vat_number"),
            postcode=form_text(form, "postcode"),
            sme=form.get("sme") == "on",
            vcse=form.get("vcse") == "on",
        )
        try:
            created = await self.session(user).call(
                self.backends.procurement.CreateSupplier,
                ppb.CreateSupplierRequest(
                    parent=f"organisations/{org}", supplier=supplier, request_id=form_text(form, "request_id")
                ),
                "procurement",
            )
        except Refusal as refusal:
            return await self.suppliers(request, user, refusal, form_as_sent(form))
        return self._done(f"/suppliers?org={org}", f"Added {created.display_name} to the register")

    async def debar_supplier(self, request: Request, user: User) -> Response:
        form = await request.form()
        name = form_text(form, "name")
        org = organisation_of(name) or user.organisation
        request.scope["query_string"] = f"org={org}".encode()
        try:
            day = form_date(form, "debarment_date")
            debarred = await self.session(user).call(
                self.backends.procurement.DebarSupplier,
                ppb.DebarSupplierRequest(
                    name=name,
                    reason=form_text(form, "reason"),
                    debarment_date=day,
                    etag=form_text(form, "etag"),
                ),
                "procurement",
            )
        except Refusal as refusal:
            return await self.suppliers(request, user, refusal)
        return self._done(f"/suppliers?org={org}", f"Debarred {debarred.display_name}")

    # --- payment runs and reports: long jobs ------------------------------------------------------

    async def payments(self, request: Request, user: User, refusal: Refusal | None = None) -> Response:
        return self.render(
            request,
            "payments.html",
            user,
            status=refusal.http_status if refusal else 200,
            refusal=refusal,
            today=today_london().isoformat(),  # a form default: the business's day
        )

    async def run_payments(self, request: Request, user: User) -> Response:
        form = await request.form()
        ledgers = form_text(form, "ledgers").replace(",", " ").split()
        try:
            payment_date = form_date(form, "payment_date")
            due_by = form_date(form, "due_by", required=False)
            if not ledgers:
                raise bad_form("ledgers", "name at least one ledger (organisations/{code}/ledgers/{ledger})")
        except Refusal as refusal:
            return await self.payments(request, user, refusal)
        run = payables_pb2.PaymentRun(payment_date=payment_date)
        if due_by is not None:
            run.due_by.CopyFrom(due_by)
        # One run per ledger, each with its own request id derived from the form's, so the
        # same form sent twice is answered with the same runs instead of paying twice.
        form_id = form_text(form, "request_id")

        def request_id(ledger: str) -> str:
            if not form_id:
                return str(uuid.uuid4())
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{form_id}/{ledger}"))

        s = self.session(user)
        finance = self.backends.finance

        async def body(job: Job) -> None:
            lines = ["ledger,payment_run,invoices,total"]
            for ledger in ledgers:
                job.log.append(f"{ledger}: paying…")
                made = await s.call(
                    finance.CreatePaymentRun,
                    fpb.CreatePaymentRunRequest(
                        parent=ledger, payment_run=run, request_id=request_id(ledger)
                    ),
                    "finance",
                )
                job.log.pop()
                job.step(f"{ledger}: {made.name}, {len(made.invoices)} invoice(s), {money(made.total)}")
                lines.append(
                    f"{ledger},{made.name},{len(made.invoices)},{money(made.total).replace(',', '')}"
                )
            job.result = ("\n".join(lines) + "\n").encode()
            job.filename = f"payment-run-{date_text(payment_date)}.csv"

        job = self.jobs.start(user.owner, f"Payment run for {', '.join(ledgers)}", len(ledgers), body)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def reports(self, request: Request, user: User, refusal: Refusal | None = None) -> Response:
        today = today_london()
        return self.render(
            request,
            "reports.html",
            user,
            status=refusal.http_status if refusal else 200,
            refusal=refusal,
            reports=REPORTS,
            today=today.isoformat(),  # a form default: the business's day
            # The pay gap is of 31 March alone: the latest one.
            snapshot=dt.date(today.year if today >= dt.date(today.year, 3, 31) else today.year - 1, 3, 31),
        )

    def _report_call(self, s: Session, kind: str, form: Mapping[str, Any]) -> tuple[Awaitable[Message], str]:
        """The export RPC for a report form, and the file name of its download."""
        org = form_text(form, "organisation")
        if kind == "spend":
            ledger = form_text(form, "ledger")
            fmt = form_text(form, "format") or "POLICE_MONTHLY"
            if fmt not in SPEND_FORMATS:
                raise bad_form("format", f"choose one of {', '.join(SPEND_FORMATS)}")
            start = form_date(form, "start_date")
            return s.call(
                self.backends.finance.ExportSpendOver500,
                fpb.ExportSpendOver500Request(
                    ledger=ledger,
                    format=reports_pb2.SpendFileFormat.Value(f"SPEND_FILE_FORMAT_{fmt}"),
                    start_date=start,
                ),
                "finance",
            ), f"spend-over-500-{organisation_of(ledger)}-{date_text(start)}.csv"
        if not org:
            raise bad_form("organisation", "name the organisation")
        if kind == "contracts":
            return s.call(
                self.backends.procurement.ExportContractsRegister,
                ppb.ExportContractsRegisterRequest(parent=f"organisations/{org}"),
                "procurement",
            ), f"contracts-register-{org}.csv"
        day = form_date(form, "date")
        if kind == "payments":
            return s.call(
                self.backends.finance.GetPaymentsCompliance,
                fpb.GetPaymentsComplianceRequest(organisation=f"organisations/{org}", period_end=day),
                "finance",
            ), f"payments-compliance-{org}-{date_text(day)}.json"
        if kind == "workforce":
            return s.call(
                self.backends.hr.GetWorkforceStatistics,
                hpb.GetWorkforceStatisticsRequest(parent=f"organisations/{org}", as_at_date=day),
                "hr",
            ), f"workforce-statistics-{org}-{date_text(day)}.json"
        if kind == "paygap":
            return s.call(
                self.backends.hr.GetGenderPayGap,
                hpb.GetGenderPayGapRequest(parent=f"organisations/{org}", snapshot_date=day),
                "hr",
            ), f"gender-pay-gap-{org}-{date_text(day)}.json"
        raise bad_form("report", f"choose one of {', '.join(REPORTS)}")

    async def export_report(self, request: Request, user: User) -> Response:
        form = await request.form()
        kind = form_text(form, "report")
        s = self.session(user)
        try:
            call, filename = self._report_call(s, kind, form)
        except Refusal as refusal:
            return await self.reports(request, user, refusal)

        async def body(job: Job) -> None:
            job.log.append(f"asking the service for the {REPORTS[kind].split(' (')[0].lower()}…")
            answer = await call
            csv = getattr(answer, "csv", None)
            if isinstance(csv, str) and filename.endswith(".csv"):
                job.result, job.media_type = csv.encode(), "text/csv"
            else:
                text = json_format.MessageToJson(answer, indent=2)
                job.result, job.media_type = text.encode(), "application/json"
            job.filename = filename
            job.step(f"ready: {filename} ({len(job.result):,} bytes)")

        job = self.jobs.start(user.owner, REPORTS[kind], 1, body)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def job(self, request: Request, user: User) -> Response:
        job = self.jobs.get(request.path_params["job"], user.owner)
        if job is None:
            return self.render(
                request,
                "refused.html",
                user,
                status=404,
                refusal=Refusal(
                    "NOT_FOUND", "no such job (it may have expired)", reason="NO_SUCH_JOB", http_status=404
                ),
            )
        return self.render(request, "job.html", user, job=job, running=job.state not in (DONE, "failed"))

    async def download(self, request: Request, user: User) -> Response:
        job = self.jobs.get(request.path_params["job"], user.owner)
        if job is None or job.state != DONE or job.result is None:
            return self.render(
                request,
                "refused.html",
                user,
                status=404,
                refusal=Refusal("NOT_FOUND", "no such download", reason="NO_SUCH_JOB", http_status=404),
            )
        return Response(
            job.result,
            media_type=job.media_type,
            headers={
                "content-disposition": f'attachment; filename="{job.filename}"',
                "cache-control": "no-store",
            },
        )

    # --- charts ------------------------------------------------------------------------------------

    async def charts(self, request: Request, user: User) -> Response:
        q = request.query_params
        s = self.session(user)
        org = q.get("org") or user.organisation
        ledger = q.get("ledger", "")
        year = q.get("year", "")
        as_at = q.get("as_at") or today_london().isoformat()  # a form default: the business's day
        budget = workforce = None
        budget_refusal = workforce_refusal = None
        if ledger and year and not re.fullmatch(r"[0-9]{4}", year):
            budget_refusal = bad_form("year", f"{year[:20]!r} is not a year (YYYY)")
        elif ledger and year:
            report, budget_refusal = await self._section(
                s.call(
                    self.backends.finance.GetBudgetReport,
                    fpb.GetBudgetReportRequest(ledger=ledger, financial_year=int(year)),
                )
            )
            if report is not None:
                budget = charts.budget_chart(report)
        try:
            day = form_date({"as_at": as_at}, "as_at")
            stats, workforce_refusal = await self._section(
                s.call(
                    self.backends.hr.GetWorkforceStatistics,
                    hpb.GetWorkforceStatisticsRequest(parent=f"organisations/{org}", as_at_date=day),
                )
            )
            if stats is not None:
                workforce = charts.workforce_charts(stats)
        except Refusal as refusal:
            workforce_refusal = refusal
        return self.render(
            request,
            "charts.html",
            user,
            org=org,
            ledger=ledger,
            year=year,
            as_at=as_at,
            budget=budget,
            budget_refusal=budget_refusal,
            workforce=workforce,
            workforce_refusal=workforce_refusal,
        )

    # --- operations: parked events and the audit log --------------------------------------------------

    async def operations(
        self,
        request: Request,
        user: User,
        refusal: Refusal | None = None,
        verified: Sequence[tuple[str, Any, Refusal | None]] = (),
        form: Any = None,
    ) -> Response:
        show = request.query_params.get("show", "parked")
        states = (
            [opb.OUTBOX_EVENT_STATE_PARKED]
            if show == "parked"
            else [opb.OUTBOX_EVENT_STATE_PARKED, opb.OUTBOX_EVENT_STATE_PENDING]
        )
        s = self.session(user)
        answers = await asyncio.gather(
            *(
                self._section(
                    s.call(
                        self.backends.operations[name].ListOutboxEvents,
                        opb.ListOutboxEventsRequest(parent="organisations/-", states=states, page_size=200),
                        name,
                    )
                )
                for name in SERVICES
            )
        )
        events = [e for found, _ in answers if found is not None for e in found.outbox_events]
        refusals = [(name, err) for name, (_, err) in zip(SERVICES, answers, strict=True) if err is not None]
        return self.render(
            request,
            "operations.html",
            user,
            status=refusal.http_status if refusal else 200,
            refusal=refusal,
            show=show,
            events=sorted(events, key=lambda e: (e.create_time.seconds, e.create_time.nanos)),
            list_refusals=refusals,
            verified=verified,
            services=SERVICES,
            opb=opb,
            form=form or {},
        )

    async def release_event(self, request: Request, user: User) -> Response:
        form = await request.form()
        service, name = form_text(form, "service"), form_text(form, "name")
        action = form_text(form, "action")
        if service not in SERVICES:
            return await self.operations(request, user, bad_form("service", "not a service of the suite"))
        stub = self.backends.operations[service]
        s = self.session(user)
        # Each is one idempotent write: the same form sent twice is answered as the first was.
        request_id = form_text(form, "request_id")
        try:
            if action == "discard":
                event = await s.call(
                    stub.DiscardOutboxEvent,
                    opb.DiscardOutboxEventRequest(
                        name=name, reason=form_text(form, "reason"), request_id=request_id
                    ),
                    service,
                )
            else:
                event = await s.call(
                    stub.RetryOutboxEvent,
                    opb.RetryOutboxEventRequest(name=name, request_id=request_id),
                    service,
                )
        except Refusal as refusal:
            return await self.operations(request, user, refusal, form=form_as_sent(form))
        state = enum_label(event, "state").lower()
        return self._done("/operations", f"{service}: event {name.rsplit('/', 1)[-1]} is now {state}")

    async def verify_audit(self, request: Request, user: User) -> Response:
        form = await request.form()
        org = form_text(form, "organisation") or user.organisation
        s = self.session(user)
        answers = await asyncio.gather(
            *(
                self._section(
                    s.call(
                        self.backends.operations[name].VerifyAuditLog,
                        opb.VerifyAuditLogRequest(organisation=f"organisations/{org}"),
                        name,
                    )
                )
                for name in SERVICES
            )
        )
        verified = [(name, found, err) for name, (found, err) in zip(SERVICES, answers, strict=True)]
        return await self.operations(request, user, verified=verified)


# --- serving -----------------------------------------------------------------------------------------


@dataclass
class RunningConsole(AsgiServing):
    console: Console = field(kw_only=True)

    async def stop(self, grace: float = 0) -> None:
        await self.shutdown(grace)
        await self.console.close()


async def start_console(
    targets: Mapping[str, str],
    *,
    issuer: TokenIssuer | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    call_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    secure_cookies: bool | None = None,
) -> RunningConsole:
    """Serve the console over the services at `targets` (service name -> gRPC target);
    `issuer` enables the development sign-in; cookies are `Secure` unless `secure_cookies`
    is false or, unset, development sign-in is on."""
    console = Console(Backends(targets, timeout=call_timeout), issuer=issuer, secure_cookies=secure_cookies)
    try:
        serving = await serve_asgi(console.asgi(), host=host, port=port, what="console")
    except BaseException:
        await console.close()
        raise
    address = serving.address
    log.info("serving", service="console", address=address, dev_sign_in=issuer is not None)
    return RunningConsole(serving.server, serving.task, serving.port, address, console=console)
