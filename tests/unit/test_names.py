"""Identifiers are matched whole: `$` would also match before a final newline, letting
`"X00000001\n"` through as a code (and on to a column too short for it)."""

from __future__ import annotations

import pytest

from libs.common.errors import InvalidArgument, Violations
from libs.common.names import OrganisationName, check_resource_id, valid_organisation_code
from services.finance.domain.chart import check_code
from services.hr.domain.identifiers import ni_number_problem, valid_collar_number
from services.procurement.domain.cpv import cpv_problem


@pytest.mark.parametrize("suffix", ["", "\n"])
def test_a_trailing_newline_is_not_part_of_a_valid_identifier(suffix: str) -> None:
    valid = suffix == ""
    assert valid_organisation_code("X00000001" + suffix) is valid
    assert valid_organisation_code("E23000010" + suffix) is valid
    assert valid_collar_number("SY4021" + suffix) is valid
    assert (ni_number_problem("AB123456C" + suffix) is None) is valid
    assert (cpv_problem("30192000-1" + suffix) is None) is valid
    v = Violations()
    check_code(v, "4000" + suffix, "account.code")
    assert (not v.items) is valid
    if valid:
        check_resource_id("abc-1" + suffix, "supplier_id")
        assert OrganisationName.parse("organisations/E23000010" + suffix).code == "E23000010"
    else:
        with pytest.raises(InvalidArgument):
            check_resource_id("abc-1" + suffix, "supplier_id")
        with pytest.raises(InvalidArgument):
            OrganisationName.parse("organisations/E23000010" + suffix)
