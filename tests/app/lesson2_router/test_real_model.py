"""Lesson 2's first screen: the course's language model routes a passage, and k costs or buys loss.

The loss the page prints is checked against the model's own forward pass and a cross-entropy
written here, not against the lesson's helpers.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from lessons.course.lm_view import example_passages, lm_path
from moe_core.lm import MoELM, load_tokenizer
from moe_core.lm_report import REPORT_FILE
from tests.app.conftest import chart_spec as figure
from tests.app.conftest import passage_html, texts


@pytest.fixture
def lesson2(open_lesson) -> AppTest:
    return open_lesson(2)


def printed_bits(at: AppTest) -> list[float]:
    line = next(m.value for m in at.markdown if "bits per token" in m.value)
    return [float(x) for x in re.findall(r"(?<![+\-\d.])(\d+\.\d\d)", line)]  # not the signed change


def bits_by_hand(text: str) -> float:
    model, tok = MoELM.from_pretrained(lm_path()).eval(), load_tokenizer(lm_path())
    ids = torch.tensor([tok.encode(text, add_special_tokens=False).ids])
    with torch.no_grad():
        logits = model(ids).logits[0, :-1]
    return float(F.cross_entropy(logits, ids[0, 1:])) / math.log(2)


def test_the_first_screen_routes_a_held_out_passage(lesson2: AppTest) -> None:
    body = passage_html(lesson2)
    assert body.count("Layer ") >= 4 and "expert 0" in body
    pick = lesson2.selectbox(key="router_lm_pick").value
    assert pick.startswith(("code:", "prose:"))
    (bits,) = printed_bits(lesson2)
    assert bits == pytest.approx(bits_by_hand(example_passages()[pick]), abs=0.006)


def test_k_reroutes_the_same_model_and_reports_the_change(lesson2: AppTest) -> None:
    (trained,) = printed_bits(lesson2)
    lesson2.slider(key="router_lm_k").set_value(1).run()
    assert not lesson2.exception
    k1, against = printed_bits(lesson2)
    assert against == pytest.approx(trained)
    assert k1 != trained
    assert lesson2.query_params["router_lm_k"] == "1"


def test_own_text_is_escaped_cleaned_and_cut(lesson2: AppTest) -> None:
    lesson2.selectbox(key="router_lm_pick").set_value("Your own text").run()
    lesson2.text_area(key="router_lm_text").input("<script>alert(1)</script> <b>bold</b>\x00\x07 ok").run()
    assert not lesson2.exception
    body = passage_html(lesson2)
    assert "&lt;script&gt;" in body or "&lt;" in body
    assert "<script>" not in body and "<b>bold" not in body
    assert "2 control character(s) were removed" in texts(lesson2)
    lesson2.text_area(key="router_lm_text").input("x = 1\n" * 2000).run()
    assert "Only the first 2,000 of 12,000 characters" in texts(lesson2)
    lesson2.text_area(key="router_lm_text").input("").run()
    assert not lesson2.exception
    assert "Type or pick some text" in texts(lesson2)


def test_what_experts_learn_states_the_measured_figures(lesson2: AppTest) -> None:
    report = json.loads((lm_path() / REPORT_FILE).read_text())
    first = next(m.value for m in lesson2.markdown if m.value.startswith("In layer 1,"))
    assert f"**{report['trained']['genre_mi'][0]:.3f} bits**" in first
    assert f"{report['trained']['chance_rate'][0]:.0%} by chance" in first
    last = len(report["trained"]["genre_mi"])
    lesson2.slider(key="router_lm_layer").set_value(last).run()
    assert not lesson2.exception
    shown = next(m.value for m in lesson2.markdown if m.value.startswith(f"In layer {last},"))
    assert f"**{report['trained']['class_mi'][last - 1]:.3f} bits**" in shown


def test_predict_then_try_k1(lesson2: AppTest) -> None:
    from lessons.lesson2_router.real_model import K1_OPTIONS, k1_outcome

    lesson2.radio(key="predict_2_k1_loss_choice").set_value(K1_OPTIONS[2])
    lesson2.button(key="FormSubmitter:predict_2_k1_loss-Lock in my prediction").click().run()
    (two,) = printed_bits(lesson2)
    lesson2.slider(key="router_lm_k").set_value(1).run()
    assert not lesson2.exception
    one, _ = printed_bits(lesson2)
    expected = k1_outcome(one - two)
    shown = [m.value for m in [*lesson2.info, *lesson2.success]]
    assert any(expected in v for v in shown), shown
    assert k1_outcome(0.7) == K1_OPTIONS[0] and k1_outcome(0.1) == K1_OPTIONS[1]
    assert k1_outcome(0.0) == K1_OPTIONS[2] and k1_outcome(-0.2) == K1_OPTIONS[3]


def bits_with_routing(text: str, top_k: int, temperature: float, noise_std: float) -> float:
    """The passage's loss with the router changed, by moe_core's probe and a cross-entropy here."""
    from moe_core.routing_probe import RoutingSettings, forward_with_routing

    model, tok = MoELM.from_pretrained(lm_path()).eval(), load_tokenizer(lm_path())
    ids = torch.tensor([tok.encode(text, add_special_tokens=False).ids])
    settings = RoutingSettings(top_k=top_k, temperature=temperature, noise_std=noise_std)
    with torch.no_grad():
        logits = forward_with_routing(model, ids, settings).logits[0, :-1]
    return float(F.cross_entropy(logits, ids[0, 1:])) / math.log(2)


def test_temperature_and_noise_reroute_the_model_and_report_the_loss(lesson2: AppTest) -> None:
    text = example_passages()[lesson2.selectbox(key="router_lm_pick").value]
    (trained,) = printed_bits(lesson2)
    lesson2.slider(key="router_lm_tau").set_value(3.0).run()
    assert not lesson2.exception
    hot, against = printed_bits(lesson2)
    assert against == pytest.approx(trained)
    assert hot == pytest.approx(bits_with_routing(text, 2, 3.0, 0.0), abs=0.006)
    lesson2.slider(key="router_lm_tau").set_value(1.0).run()
    lesson2.slider(key="router_lm_noise").set_value(2.0).run()
    noisy, _ = printed_bits(lesson2)
    assert noisy == pytest.approx(bits_with_routing(text, 2, 1.0, 2.0), abs=0.006)
    assert noisy > trained  # the model was trained without noise
    assert lesson2.query_params["router_lm_noise"] == "2.0"
    assert "σ = 2" in next(m.value for m in lesson2.markdown if "bits per token" in m.value)


def test_each_token_is_drawn_in_its_experts_colour() -> None:
    """The passage styles tokens by class (one rule per expert), so check the rule each token gets."""
    import re
    from html.parser import HTMLParser

    import numpy as np

    from lessons.course.lm_view import EXPERT_TINTS, RoutedText, passage_html

    top1 = np.array([[0, 7, 3], [5, 5, 1]])
    body = passage_html(RoutedText(["def", " f", "<b>"], top1, [], None))
    rules = dict(re.findall(r"\.(moe-lm-e\d)\{background:(#[0-9A-F]{6})\}", body))

    class Tokens(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[str, str, str | None]] = []  # (title, colour, inline style)

        def handle_starttag(self, tag: str, attrs: list) -> None:
            a = dict(attrs)
            if tag == "span" and "moe-lm-tok" in (a.get("class") or ""):
                expert_class = next(c for c in a["class"].split() if re.fullmatch(r"moe-lm-e\d", c))
                self.seen.append((a["title"], rules[expert_class], a.get("style")))

    parser = Tokens()
    parser.feed(body)
    want = [(f"layer {layer + 1}: expert {e}", EXPERT_TINTS[e], None)
            for layer in range(2) for e in top1[layer]]  # fmt: skip
    assert parser.seen == want
    assert "&lt;b&gt;" in body and "<b>" not in body.replace("<b>Layer", "")


def logits_by_hand(text: str, layer: int) -> torch.Tensor:
    """Router logits [T, E] of `layer` for `text`, read off the model's gate with a hook."""
    model, tok = MoELM.from_pretrained(lm_path()).eval(), load_tokenizer(lm_path())
    seen = []
    hook = model.layers[layer].mlp.router.gate.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        model(torch.tensor([tok.encode(text, add_special_tokens=False).ids]))
    hook.remove()
    return seen[0].reshape(-1, seen[0].shape[-1])


def test_the_family_comparison_is_an_optional_deep_dive(lesson2: AppTest) -> None:
    from lessons.lesson2_router import FAMILIES_DIVE

    dive = next(e for e in lesson2.expander if e.label.startswith("Optional deep dive"))
    assert "families" in dive.label and not dive.proto.expanded
    drawn = [c.proto.id.rsplit("-", 1)[-1] for c in lesson2.get("plotly_chart")]
    assert "router_family_chart" not in drawn and "How real model families route" not in texts(lesson2)
    lesson2.session_state[FAMILIES_DIVE] = True  # what a click on the expander sends
    lesson2.run()
    assert not lesson2.exception
    assert "How real model families route" in texts(lesson2)
    lesson2.select_slider(key="router_family_token").set_value(3).run()
    lesson2.selectbox(key="router_family_layer").set_value(1).run()
    assert not lesson2.exception

    # Mixtral's recipe by hand: softmax over all experts, top-2, renormalised.
    logits = logits_by_hand(lesson2.session_state["router_lm_shown_text"], layer=1)[3]
    probs = torch.softmax(logits.double(), -1)
    top = sorted(torch.topk(probs, 2).indices.tolist())
    table = next(d.value for d in lesson2.dataframe if "family" in d.value.columns)
    mixtral = table[table["family"] == "Mixtral"].iloc[0]
    assert mixtral["experts chosen"] == ", ".join(f"E{e}" for e in top)
    expected = (probs[top] / probs[top].sum()).tolist()
    assert [float(w) for w in mixtral["weights"].split(", ")] == pytest.approx(expected, abs=1e-3)
    share = figure(lesson2, "router_family_chart")["data"][0]["z"]
    row = share[list(table["family"]).index("Mixtral")]
    assert [row[e] for e in top] == pytest.approx(expected, abs=1e-3)
    assert sum(row) == pytest.approx(1.0, abs=1e-6)
