"""The page model: the shipped knowledge of anakinra turned into sections (no HTML involved)."""

from __future__ import annotations

import pytest

from fhirsvc.monograph.model import (
    ItemList,
    LabelNote,
    Link,
    Table,
    Timeline,
    WeightDoseTable,
    build_page,
    list_drugs,
)

ANCHORS = (
    "summary", "how-it-works", "dosing-ra", "dosing-nomid", "kidney-disease", "side-effects", "interactions",
    "live-vaccines", "warnings", "pregnancy", "breastfeeding", "seniors", "children", "allergies", "monitoring",
    "storage", "travel", "self-injection", "source",
)


def sources(section) -> set[str]:
    return {ref.label for ref in section.sources}


def test_every_anchor_in_order(page):
    assert page.anchors == ANCHORS
    assert page.title == "anakinra (Kineret)"
    assert page.lang == "en"


def test_every_section_has_content_and_cites_fhir_resources(page):
    for section in page.sections:
        assert section.blocks and section.title, section.anchor
        assert section.sources, section.anchor
        for ref in section.sources:
            assert ref.href == f"/fhir/R5/{ref.resource_type}/{ref.id}"


def test_unknown_drug_has_no_page(knowledge):
    assert build_page(knowledge, "no-such-drug") is None


def test_list_of_drugs(knowledge):
    [drug] = list_drugs(knowledge)
    assert (drug.id, drug.name, drug.other_names, drug.href) == ("anakinra", "anakinra", ("Kineret",),
                                                                "/monographs/anakinra")


def test_summary_names_uses_strength_and_products(page):
    summary = page.section("summary")
    glance = summary.blocks_of(Table)[0]
    assert ("Strength", "100 mg/0.67 mL") in glance.rows
    text = summary.text
    for use in ("Rheumatoid arthritis (RA)", "Neonatal-onset multisystem inflammatory disease (NOMID)",
                "Deficiency of Interleukin-1 Receptor Antagonist (DIRA)"):
        assert use in text
    assert text.index("Rheumatoid arthritis (RA)") < text.index("(NOMID)") < text.index("(DIRA)")  # dosed first
    links = [item for block in summary.blocks_of(ItemList) for item in block.items if isinstance(item, Link)]
    assert {link.href for link in links} == {"#dosing-ra", "#dosing-nomid"}
    assert {"ClinicalUseDefinition/anakinra-indication-ra", "Medication/kineret",
            "PackagedProductDefinition/kineret-carton-7"} <= sources(summary)


def test_how_it_works(page):
    assert "interleukin-1" in page.section("how-it-works").text


def test_ra_dosing(page):
    section = page.section("dosing-ra")
    assert section.title.startswith("Dosing: Rheumatoid arthritis")
    standard = section.blocks_of(Table)[0]
    assert standard.columns == ("Dosage", "Dose", "How often", "Maximum")
    assert standard.rows[0] == ("Standard", "100 mg", "once a day", "100 mg per day")
    assert "Route: under the skin (subcutaneous) injection" in section.text
    assert "Age ≥ 18 years" in section.text
    assert "hasn't been established" in section.text  # ra-child
    assert sources(section) == {"MedicationKnowledge/anakinra", "ClinicalUseDefinition/anakinra-indication-ra"}


@pytest.mark.parametrize(("kg", "low", "high", "top", "volumes"), [
    (20, 20, 40, 160, (0.13, 0.27, 1.07)),
    (5, 5, 10, 40, (0.03, 0.07, 0.27)),
    (50, 50, 100, 400, (0.34, 0.67, 2.68)),
    (70, 70, 140, 560, (0.47, 0.94, 3.75)),
])
def test_nomid_weight_table(page, kg, low, high, top, volumes):
    [table] = page.section("dosing-nomid").blocks_of(WeightDoseTable)
    assert [row.weight_kg for row in table.rows] == [5, 10, 15, 20, 30, 40, 50, 60, 70]
    assert table.rates == (1, 2, 8)  # starting low/high mg/kg/day and maxDosePerPeriod
    assert table.strength == "100 mg/0.67 mL"
    row = table.row(kg)
    assert tuple(dose.mg for dose in row.doses) == (low, high, top)
    assert tuple(dose.ml for dose in row.doses) == volumes
    assert "When given twice a day, the total is divided" in table.note  # the split dosage
    assert "100 mg/0.67 mL solution" in table.note


def test_nomid_weight_table_texts(page):
    [table] = page.section("dosing-nomid").blocks_of(WeightDoseTable)
    row = table.row(20)
    assert (row.weight_text, row.doses[0].mg_text, row.doses[2].mg_text, row.doses[2].ml_text) == (
        "20 kg", "20 mg/day", "160 mg/day", "1.07 mL")
    assert table.columns == ("Starting (low): 1 mg/kg/day", "Starting (high): 2 mg/kg/day", "Maximum: 8 mg/kg/day")


def test_kidney_disease(page):
    section = page.section("kidney-disease")
    [dosing] = section.blocks_of(Table)
    assert dosing.columns == ("Indication", "When", "Dose", "How often")
    assert ("Creatinine clearance or eGFR < 30 mL/min", "100 mg", "once every 2 days") in [r[1:] for r in dosing.rows]
    assert ("Creatinine clearance or eGFR < 30 mL/min", "as prescribed", "once every 2 days") in [
        r[1:] for r in dosing.rows]
    assert "harder for your body to clear" in section.text
    [note] = section.blocks_of(LabelNote)
    assert "CrCl" in note.label and note.date == "2020-12" and note.url.startswith("https://")
    assert "Kidney function test before starting" in section.text
    assert {"ClinicalUseDefinition/anakinra-warning-kidney-disease", "MedicationKnowledge/anakinra",
            "PlanDefinition/anakinra-monitoring"} <= sources(section)


def test_side_effects_common_and_serious(page):
    section = page.section("side-effects")
    text = section.text
    common, serious = section.blocks_of(ItemList)[:2]
    assert "Headache" in common.items and "Stomach pain" in common.items and len(common.items) == 11
    assert [item.split(".")[0] for item in serious.items] == ["Allergic reactions", "Serious infections"]
    assert "call 9-1-1" in text
    assert "ClinicalUseDefinition/anakinra-effect-serious-infections" in sources(section)


def test_interactions(page):
    section = page.section("interactions")
    text = section.text
    assert "Tumor necrosis factor (TNF) inhibitors" in text
    assert "Includes: TNF inhibitors (etanercept, infliximab, adalimumab" in text
    assert "Washout: at least 3 months after stopping" in text
    assert any(isinstance(b, LabelNote) and "not recommended" in b.label for b in section.blocks)
    assert {"ClinicalUseDefinition/anakinra-interaction-tnf-inhibitors", "ValueSet/tnf-inhibitors",
            "ClinicalUseDefinition/anakinra-interaction-live-vaccines"} <= sources(section)


def test_live_vaccines_from_the_value_set(page, knowledge):
    section = page.section("live-vaccines")
    [table] = section.blocks_of(Table)
    assert table.columns == ("Vaccine", "CVX code", "Other names")
    value_set = knowledge.get("ValueSet", "live-vaccines")
    expected = [c["code"] for include in value_set["compose"]["include"] for c in include["concept"]]
    assert [row[1] for row in table.rows] == expected
    mmr = next(row for row in table.rows if row[1] == "03")
    assert mmr[0] == "measles, mumps and rubella virus vaccine" and "MMR" in mmr[2]
    nasal = next(row for row in table.rows if row[1] == "111")
    assert "FluMist" in nasal[2]
    assert "at least 3 months after stopping" in section.text
    assert sources(section) == {"ClinicalUseDefinition/anakinra-interaction-live-vaccines", "ValueSet/live-vaccines"}


@pytest.mark.parametrize(("anchor", "cud", "words"), [
    ("warnings", "anakinra-warning-neutropenia", "lower number of certain white blood cells"),
    ("warnings", "anakinra-warning-serious-infections", "open sores on your body"),
    ("pregnancy", "anakinra-warning-pregnancy", "pregnancy category B"),
    ("breastfeeding", "anakinra-warning-breastfeeding", "passes through breast milk"),
    ("seniors", "anakinra-warning-seniors", "over the age of 65"),
    ("children", "anakinra-warning-children", "approved for children with neonatal-onset"),
    ("allergies", "anakinra-contraindication-anakinra", "Previous allergic reaction to anakinra"),
    ("allergies", "anakinra-contraindication-e-coli-protein", "E. coli"),
    ("allergies", "anakinra-warning-latex", "allergic to rubber or latex"),
    ("monitoring", "anakinra-warning-blood-count-monitoring", "every month for 3 months"),
])
def test_warnings_by_topic(page, anchor, cud, words):
    section = page.section(anchor)
    assert words in section.text
    assert f"ClinicalUseDefinition/{cud}" in sources(section)


def test_each_warning_is_in_one_section(page):
    cited = [ref.id for section in page.sections if section.anchor != "source" for ref in section.sources
             if ref.id.startswith("anakinra-warning-") or ref.id.startswith("anakinra-contraindication-")]
    assert len(cited) == len(set(cited)) == 14


def test_pregnancy_label_difference(page):
    [note] = page.section("pregnancy").blocks_of(LabelNote)
    assert "no letter category" in note.label and note.source.id == "anakinra-warning-pregnancy"


def test_children_links_to_the_dosing(page):
    [links] = [b for b in page.section("children").blocks_of(ItemList)
               if all(isinstance(i, Link) for i in b.items)]
    assert [link.href for link in links.items] == ["#dosing-ra", "#dosing-nomid"]


def test_monitoring_timeline_from_the_plan(page):
    section = page.section("monitoring")
    [timeline] = section.blocks_of(Timeline)
    assert [entry.when for entry in timeline.entries] == [
        "Baseline (before starting)", "Month 1", "Month 2", "Month 3", "Month 6", "Month 9", "Month 12",
        "Throughout treatment"]
    assert [entry.month for entry in timeline.entries] == [0, 1, 2, 3, 6, 9, 12, None]
    baseline = timeline.entry("Baseline (before starting)")
    assert baseline.items == ("Neutrophil count before starting (within 30 days)",
                              "Kidney function test before starting")
    assert timeline.entry("Month 9").items == ("Neutrophil count",)
    assert timeline.entry("Throughout treatment").items == ("Watch for signs of infection",)
    assert "Suggested order: Order a complete blood count with differential" in section.text
    assert {"PlanDefinition/anakinra-monitoring", "ActivityDefinition/cbc-with-differential"} <= sources(section)


def test_storage_and_travel(page):
    storage, travel = page.section("storage"), page.section("travel")
    assert ("Temperature (Celsius)", "2.2\u20137.7 °C") in storage.blocks_of(Table)[0].rows
    assert "expiration date" in storage.text and "checked luggage" not in storage.text
    assert ("Container", "travel cooler; original carton") in travel.blocks_of(Table)[0].rows
    assert "checked luggage" in travel.text and "X-ray" in travel.text
    assert "Composition/anakinra-patient-information" in sources(travel)


def test_self_injection_and_supplies(page):
    section = page.section("self-injection")
    text = section.text
    assert "received proper training" in text
    assert "puncture-resistant needle disposal container" in text
    assert "Hidden costs" in text and "prior authorization" in text and "as soon as you remember" in text
    assert sources(section) == {"MedicationKnowledge/anakinra", "Composition/anakinra-patient-information"}


def test_source_document_and_label_differences(page):
    section = page.section("source")
    [document] = section.blocks_of(Table)
    rows = dict(document.rows)
    assert rows["Document"] == "anakinra, Parenteral Solution (Kineret): consumer monograph"
    assert "University of Illinois-Chicago" in rows["Authors"]
    assert rows["Medically reviewed"] == (
        "2015-05-26 by Creighton University, Center for Drug Information and Evidence-Based Practice")
    notes = section.blocks_of(LabelNote)
    assert {note.source.label for note in notes} == {
        "MedicationKnowledge/anakinra", "ClinicalUseDefinition/anakinra-indication-dira",
        "ClinicalUseDefinition/anakinra-indication-ra", "ClinicalUseDefinition/anakinra-interaction-tnf-inhibitors",
        "ClinicalUseDefinition/anakinra-warning-kidney-disease", "ClinicalUseDefinition/anakinra-warning-latex",
        "ClinicalUseDefinition/anakinra-warning-pregnancy"}
    latex = next(note for note in notes if note.source.resource_type == "MedicationKnowledge")
    assert (latex.topic, latex.date) == ("latex", "2020-12-30")
    assert latex.monograph == "The inner needle cover on the prefilled syringe contains latex."
    assert "not made with natural rubber latex" in latex.label
    assert all(note.url and note.url.startswith("https://") for note in notes)
    assert "DocumentReference/anakinra-monograph-2015" in sources(section)


def test_the_source_text_is_never_read(page, knowledge):
    """The page comes from the knowledge: nothing of the embedded monograph text reaches it."""
    text = "\n".join(section.text for section in page.sections)
    assert "All Brand" not in text  # the start of the embedded source text (base64 in the DocumentReference)


def test_second_drug_renders_from_its_knowledge_alone(two_drug_knowledge):
    page = build_page(two_drug_knowledge, "examplumab")
    assert page.anchors == ("summary", "how-it-works", "dosing-gout", "dosing-daily", *ANCHORS[4:])
    assert page.title == "examplumab (Exampla)"
    # a card built from the guideline id "podagra-weight" links #dosing-podagra: an alias of the section
    assert page.section("dosing-gout").aliases == ("dosing-podagra",)
    assert page.section("dosing-daily").aliases == ()
    [table] = page.section("dosing-gout").blocks_of(WeightDoseTable)
    row = table.row(20)  # 0.5 mg/kg twice a day = 1 mg/kg/day; maximum 3 mg/kg/day; 20 mg/mL
    assert [(d.mg, d.ml) for d in row.doses] == [(20, 1.0), (60, 3.0)]
    assert "Halve the dose" in page.section("kidney-disease").text
    vaccines = page.section("live-vaccines").blocks_of(Table)[0]
    assert [row[:2] for row in vaccines.rows] == [("measles, mumps and rubella virus vaccine", "03"),
                                                   ("varicella", "21")]
    assert "at least 6 weeks after stopping" in page.section("live-vaccines").text
    note = page.section("kidney-disease").blocks_of(LabelNote)[0]
    assert note.url is None  # a javascript: source is not linked
    assert page.section("monitoring").sources[0].label == "MedicationKnowledge/examplumab"
    assert [drug.id for drug in list_drugs(two_drug_knowledge)] == ["anakinra", "examplumab"]
