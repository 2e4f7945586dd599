"""The Five Safes view is built from the determination, categorization and assessment."""

from __future__ import annotations

from sharewise.policy.model import LawPack
from sharewise.security.five_safes import SAFES, render_markdown
from sharewise.services.security import five_safes_view, specify
from tests.conftest import TODAY
from tests.security.conftest import make_request


def test_the_view_has_the_five_safes_in_order(law: LawPack) -> None:
    request = make_request(law)
    view = five_safes_view(law, request, specify(law, request, TODAY), TODAY)
    assert tuple(s.name for s in view.safes) == SAFES


def test_a_permitted_project_with_named_users_is_settled_but_the_setting_waits_for_assessment(law: LawPack) -> None:
    request = make_request(law, data=["identity", "eligibility_and_benefits"])
    view = five_safes_view(law, request, specify(law, request, TODAY), TODAY, authorized_users=("eligibility-unit",))
    assert view.safe("project").status == "settled"
    assert view.safe("people").status == "settled"
    assert view.safe("setting").status == "open"


def test_a_prohibited_request_is_a_project_concern(law: LawPack) -> None:
    request = make_request(
        law,
        source={"program": "tanf"},
        recipient={"kind": "community_organization"},
        purpose="service_delivery",
        data=["identity", "federal_tax_information"],
    )
    view = five_safes_view(law, request, specify(law, request, TODAY), TODAY)
    assert view.safe("project").status == "concern"


def test_the_page_shows_the_categorization_and_output_rules(law: LawPack) -> None:
    request = make_request(law, form="aggregate", data=["demographics"], purpose="statistics")
    page = render_markdown(five_safes_view(law, request, specify(law, request, TODAY), TODAY), "county counts")
    assert "Safe data" in page and "overall low" in page
    assert "small cells suppressed" in page
