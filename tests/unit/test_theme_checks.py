"""Theme checks without servers: contrast, CSS allowlist, copy limits, layout rules, the final gate."""

from __future__ import annotations

import re

import pytest

from domain.themes import checks
from domain.themes.catalogue import CONTRAST_RULES, SECTIONS
from domain.themes.contrast import adjust_to_ratio, ratio
from domain.themes.css import sanitize_declarations, stylesheet_problems
from domain.themes.safety import file_problems

GOOD_PALETTE = {
    "background": "#ffffff",
    "surface": "#f5f5f4",
    "text": "#1c1917",
    "muted_text": "#44403c",
    "primary": "#1d4ed8",
    "on_primary": "#ffffff",
    "accent": "#b91c1c",
    "border": "#78716c",
}


def tokens(**palette: str) -> dict:
    return {
        "palette": {**GOOD_PALETTE, **palette},
        "typography": {
            "heading_font": "old-style",
            "body_font": "humanist",
            "base_size_px": 16,
            "scale_ratio": 1.25,
            "heading_weight": 600,
            "line_height": 1.6,
        },
        "shape": {"radius_small": "4px", "radius_large": "1rem", "spacing_unit_px": 8, "border_width_px": 1},
        "heading_css": "",
        "button_css": "",
    }


def test_contrast_ratios_match_wcag_reference_values() -> None:
    # WCAG's own examples: black on white is 21:1, and #777 on white just misses AA (4.48:1).
    assert ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert ratio("#ffffff", "#777777") == ratio("#777777", "#ffffff")


@pytest.mark.parametrize("bg", ["#ffffff", "#777777", "#767676", "#1d4ed8", "#fdf6ec", "#000000"])
@pytest.mark.parametrize("minimum", [3.0, 4.5])
def test_adjusted_colour_reaches_the_ratio_on_any_background(bg: str, minimum: float) -> None:
    # Given a foreground that fails on `bg` (the same colour)
    # When it is adjusted
    fixed = adjust_to_ratio(bg, bg, minimum)
    # Then it passes, by the smallest step that rounding allows
    assert fixed is not None and ratio(fixed, bg) >= minimum


def test_good_palette_has_no_problems() -> None:
    assert checks.design_problems(tokens()) == []


def test_failing_pair_is_reported_with_its_numbers() -> None:
    # Given button labels nearly the colour of the button
    problems = checks.design_problems(tokens(on_primary="#2563eb"))
    # Then the problem names both roles, both colours, the ratio and the minimum
    assert len(problems) == 1
    assert re.fullmatch(
        r"palette\.on_primary #2563eb on palette\.primary #1d4ed8: contrast 1\.\d\d:1, "
        r"needs at least 4\.5:1 \(button labels\)",
        problems[0],
    )


def test_fix_moves_only_failing_text_colours_and_records_why() -> None:
    # Given a palette with two failing pairs
    fixed, notes = checks.fix_design(tokens(on_primary="#2563eb", muted_text="#d6d3d1"))
    # Then every rule passes, backgrounds are untouched, and each change says from, to and why
    palette = fixed["palette"]
    assert all(ratio(palette[r.fg], palette[r.bg]) >= r.minimum for r in CONTRAST_RULES)
    assert palette["background"] == "#ffffff" and palette["primary"] == "#1d4ed8"
    assert {n["field"] for n in notes} == {"palette.on_primary", "palette.muted_text"}
    assert all(re.search(r"\d\.\d\d:1 .*needs 4\.5:1.*now \d\.\d\d:1", n["reason"]) for n in notes)


def test_palette_no_single_text_colour_can_serve_fails_with_numbers() -> None:
    # Given a dark background and a light surface: body text can't pass on both
    bad = tokens(background="#111111", surface="#fafafa", text="#777777", muted_text="#777777")
    # When the fix-up runs, it refuses, naming the pair and its ratio
    with pytest.raises(
        checks.UnfixableContrast, match=r"palette\.text #[0-9a-f]{6} on .*needs at least 4\.5:1"
    ):
        checks.fix_design(bad)


def test_out_of_range_lengths_and_headings_only_fonts_are_reported_and_fixed() -> None:
    bad = tokens()
    bad["shape"]["radius_large"] = "87rem"
    bad["typography"]["body_font"] = "didone"
    problems = checks.design_problems(bad)
    assert "shape.radius_large is 87rem (1392px); use 0 to 32px" in problems
    assert any("body_font 'didone' is for headings only" in p for p in problems)
    fixed, _ = checks.fix_design(bad)
    assert fixed["shape"]["radius_large"] == "32px" and fixed["typography"]["body_font"] == "humanist"


@pytest.mark.parametrize(
    "hostile",
    [
        "@import url(evil.css)",
        "background: url(javascript:alert(1))",
        "color: expression(alert(1))",
        "width: expression(alert(1)); behavior: url(x.htc)",
        "</style><script>alert(1)</script>",
        "a { color: red } letter-spacing: 1px",
        "letter-spacing: 0.1em !important; -moz-binding: url(x)",
        "text-transform: var(--x)",
        "font-family: 'Evil'",
    ],
)
def test_model_css_keeps_only_allowlisted_plain_declarations(hostile: str) -> None:
    kept, _ = sanitize_declarations(hostile)
    assert not re.search(r"(?i)url|expression|import|script|var\(|binding|font-family|!important|\{", kept)


def test_allowed_model_css_is_kept_and_reserialized() -> None:
    kept, dropped = sanitize_declarations("letter-spacing: 0.08em; text-transform: UPPERCASE; color: red")
    assert kept == "letter-spacing: 0.08em; text-transform: UPPERCASE"
    assert [d.property for d in dropped] == ["color"]


def test_stylesheet_gate_finds_urls_imports_and_unknown_functions() -> None:
    css = ".a { background: url(x) } @import 'y.css'; .b { width: expression(1) } .c { color: var(--ok) }"
    found = " ".join(stylesheet_problems(css))
    assert "url()" in found and "@import" in found and "expression()" in found and "var" not in found


@pytest.mark.parametrize(
    "markup",
    [
        "<p>hi</p><script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<div style="width: expression(alert(1))">x</div>',
        "<style>@import url(evil.css);</style>",
        '<iframe src="https://example.com"></iframe>',
    ],
)
def test_final_gate_refuses_active_html(markup: str) -> None:
    assert file_problems("sections/01-hero.html", markup)


def test_copy_over_its_limit_is_reported_with_numbers_then_trimmed_at_a_word() -> None:
    spec = SECTIONS["hero"]
    words = {
        "heading": ("Calm linen for slow mornings " * 4).strip(),
        "subheading": "ok",
        "cta_label": "Shop",
    }
    problems = checks.copy_problems(spec, words)
    assert problems == [f"heading is {len(words['heading'])} characters; hero allows at most 60"]
    fixed, notes = checks.fix_copy(spec, words)
    assert fixed is not None and len(fixed["heading"]) <= 60 and not fixed["heading"].endswith(" ")
    assert fixed["heading"].split()[-1] in words["heading"].split()
    assert notes[0]["from_length"] == len(words["heading"])


def test_required_copy_gets_a_default_and_too_few_testimonials_drop_the_section() -> None:
    fixed, _ = checks.fix_copy(SECTIONS["newsletter"], {"heading": "Join us", "cta_label": ""})
    assert fixed is not None and fixed["cta_label"] == "Subscribe"
    one_quote = {"heading": "Kind words", "items": [{"title": "Ana", "text": "Lovely."}]}
    assert "items: 1 given; testimonials needs 2 to 3" in checks.copy_problems(
        SECTIONS["testimonials"], one_quote
    )
    dropped, _ = checks.fix_copy(SECTIONS["testimonials"], one_quote)
    assert dropped is None


def test_layout_is_reordered_deduplicated_and_filled_with_known_products() -> None:
    plan = {
        "sections": [
            {"type": "story", "intent": "x", "product_ids": []},
            {"type": "hero", "intent": "x", "product_ids": ["nope"]},
            {"type": "story", "intent": "y", "product_ids": []},
            {"type": "product_grid", "intent": "z", "product_ids": ["p2", "evil/../id"]},
        ]
    }
    ids = ["p1", "p2", "p3"]
    problems = checks.layout_problems(plan, ids)
    assert "the page must start with 'hero' (it starts with 'story')" in problems
    assert "'story' appears 2 times; use each section type at most once" in problems
    fixed, _ = checks.fix_layout(plan, ids)
    assert [s["type"] for s in fixed["sections"]] == ["hero", "story", "product_grid", "footer"]
    assert checks.layout_problems(fixed, ids) == []
    assert fixed["sections"][2]["product_ids"][0] == "p2"
    assert set(fixed["sections"][2]["product_ids"]) <= set(ids)


def test_a_page_without_products_gets_a_product_grid() -> None:
    plan = {"sections": [{"type": t, "intent": "x", "product_ids": []} for t in ("hero", "story", "footer")]}
    assert any("shows no products" in p for p in checks.layout_problems(plan, ["p1"]))
    fixed, _ = checks.fix_layout(plan, ["p1"])
    assert [s["type"] for s in fixed["sections"]] == ["hero", "product_grid", "story", "footer"]
    assert fixed["sections"][1]["product_ids"] == ["p1"]


@pytest.mark.parametrize(
    ("agent", "feedback"),
    [
        ("theme_designer", "palette.on_primary #9a3412 on palette.primary #4338ca: contrast 1.08:1"),
        ("layout_planner", "the page must start with 'hero' (it starts with 'story')"),
        ("section_copywriter", "cta_label is 28 characters; newsletter allows at most 20"),
    ],
)
def test_failed_checks_reach_the_agent_with_their_numbers(agent: str, feedback: str) -> None:
    from adapters.settings import DEFAULT_PROMPTS_DIR
    from agents.prompts import PromptRegistry
    from agents.schemas import OUTPUT_MODELS
    from agents.theme.inputs import ThemeBrief

    prompt = PromptRegistry(DEFAULT_PROMPTS_DIR, OUTPUT_MODELS).get(agent)
    previous = {"answer": "the previous one"}
    variables = {
        "theme_designer": lambda: {
            "brand": {},
            "palette_hint": "",
            "hint_colours": "",
            "hue_rule": "",
            "locale": "en",
            "fonts": [],
            "contrast_rules": [],
            "css_properties": [],
        },
        "layout_planner": lambda: {"brand": {}, "catalogue": [], "products": [], "rules": {}},
        "section_copywriter": lambda: {
            "section": {},
            "brand": {},
            "store_name": "x",
            "products": [],
            "locale": "en",
        },
    }[agent]()
    assert ThemeBrief(description="calm linen")
    messages = prompt.render({**variables, "feedback": [feedback], "previous": previous})
    assert feedback in messages[-1]["content"] and "the previous one" in messages[-1]["content"]
    first = prompt.render({**variables, "feedback": [], "previous": None})
    assert feedback not in first[-1]["content"]


# --- the palette hint: hue distance ---------------------------------------------


def _hue(colour: str) -> float:
    """HSL hue in degrees, measured here independently of domain.themes.hue."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hi, lo = max(r, g, b), min(r, g, b)
    if hi == r:
        h = ((g - b) / (hi - lo)) % 6
    elif hi == g:
        h = (b - r) / (hi - lo) + 2
    else:
        h = (r - g) / (hi - lo) + 4
    return h * 60


def _apart(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


@pytest.mark.parametrize(
    ("hint", "names", "hues"),
    [
        ("navy and blue", ["navy", "blue"], [240, 240]),
        ("deep forest green and warm off-white", ["forest green", "off-white"], [120, None]),
        ("azul marino y azul, con blanco", ["azul marino", "azul", "blanco"], [240, 240, None]),
        ("Rot und Waldgrün", ["rot", "waldgrün"], [0, 120]),
        ("brand colour #0b3d91, accent #f60", ["#0b3d91", "#ff6600"], [218, 24]),
        ("cream and charcoal", ["cream", "charcoal"], [None, None]),
        ("rosewood tones", [], []),
        ("", [], []),
    ],
)
def test_colours_are_read_from_a_hint_by_name_or_hex(hint: str, names: list[str], hues: list) -> None:
    from domain.themes.hue import hint_colours

    found = hint_colours(hint)
    assert [c.name for c in found] == names
    assert [None if c.hue is None else round(c.hue) for c in found] == hues


def test_palette_far_from_the_hinted_hue_is_sent_back_with_the_degrees() -> None:
    # Given a hint for navy and blue, and a teal primary with a red accent (what the issue saw)
    design = tokens(primary="#0f766e", accent="#b91c1c")
    # When the design is checked
    problems = checks.design_problems(design, "navy and blue")
    # Then both roles are reported with their hue and distance from the nearest hinted colour
    assert any(
        p.startswith("palette.primary #0f766e has hue 175°, 65° from the nearest colour of the palette hint")
        for p in problems
    ), problems
    assert any(p.startswith("palette.accent #b91c1c has hue 0°, 120°") for p in problems), problems
    assert all("within 30°" in p for p in problems if "hue" in p)
    # And the measured distance agrees with an independent computation
    assert round(_apart(_hue("#0f766e"), 240)) == 65


def test_palette_near_the_hinted_hue_passes_and_no_hint_means_no_hue_check() -> None:
    design = tokens(primary="#1d4ed8", accent="#4338ca")  # hues 224° and 245°: both near 240°
    assert checks.design_problems(design, "navy and blue") == []
    teal = tokens(primary="#0f766e")
    assert checks.design_problems(teal, None) == []
    assert checks.design_problems(teal, "cream and charcoal") == []  # neutrals leave hues free


def test_a_grey_primary_fails_a_hint_that_asks_for_a_hue() -> None:
    problems = checks.design_problems(tokens(primary="#333333"), "navy")
    assert problems and "palette.primary #333333 is grey (no hue)" in problems[0]


def test_fix_turns_hues_to_the_hint_then_keeps_contrast() -> None:
    # Given a palette whose hues ignore the hint and whose button label fails contrast
    design = tokens(primary="#0f766e", accent="#b91c1c", on_primary="#0f766e")
    # When the rounds ran out and the fix-up runs
    fixed, notes = checks.fix_design(design, "forest green")
    # Then primary and accent now sit within 30° of green, measured independently
    for role in ("primary", "accent"):
        assert _apart(_hue(fixed["palette"][role]), 120) <= 30, fixed["palette"][role]
    # And every contrast pair still passes, and every change is recorded with its reason
    assert checks.design_problems(fixed, "forest green") == []
    fields = [n["field"] for n in notes]
    assert fields.count("palette.primary") >= 1 and "palette.accent" in fields
    assert any("turned to hue 120°" in n.get("reason", "") for n in notes)


def test_copy_defaults_are_in_the_brief_language() -> None:
    fixed, _ = checks.fix_copy(SECTIONS["newsletter"], {"heading": "Únete", "cta_label": ""}, "es")
    assert fixed is not None and fixed["cta_label"] == "Suscribirse"
    fixed, _ = checks.fix_copy(SECTIONS["hero"], {"heading": "", "subheading": "x", "cta_label": ""}, "de-AT")
    assert fixed is not None and (fixed["heading"], fixed["cta_label"]) == ("Willkommen", "Jetzt einkaufen")


@pytest.mark.parametrize(
    ("src", "allowed"),
    [
        ("https://cdn.shopify.com/s/files/1/0375/3269/6635/files/a.png?v=1", True),
        ("https://stanley1913.myshopify.com/cdn/shop/files/a.jpg", True),
        ("https://stanley1913.myshopify.com/admin/a.jpg", False),
        ("https://evil.example/cdn.shopify.com/a.png", False),
        ("https://cdn.shopify.com.evil.example/a.png", False),
        ("http://cdn.shopify.com/s/files/a.png", False),
        ("https://user@cdn.shopify.com/s/a.png", False),
        ('https://cdn.shopify.com/s/a.png" onerror="x', False),
        ("javascript:alert(1)", False),
    ],
)
def test_only_shopify_cdn_images_are_shown_or_published(src: str, allowed: bool) -> None:
    from domain.themes.images import shopify_image

    assert bool(shopify_image(src)) is allowed
    problems = file_problems("preview.html", f'<img src="{src}" alt="">')
    assert (problems == []) is allowed, problems
