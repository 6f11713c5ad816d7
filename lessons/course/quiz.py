"""End-of-lesson quizzes: TOML banks in `lessons/content/lesson<N>/quiz.toml`, graded here.

The file format is documented in TEAM.md (kinds: single, multi, truefalse, number). Parsing and
grading are plain functions so they can be tested without Streamlit; `render_quiz` draws one
quiz as an `st.form` (answers are sent together, so picking a choice does not rerun the page),
then shows, per question, right or wrong, and the score. A pass is a score of at least
`pass_fraction` (80 % by default); a learner can retry as often as they like.

What a learner is told, and when (issue 18):
- a submission with no answer at all is refused with a notice: nothing is graded or recorded;
- the correct answers (and the explanations, which give them away) are shown once the learner has
  passed, or after a failed attempt when they press "Show the answers"; until then a failed attempt
  says only which questions were right;
- a numeric prompt states its rounding ("Give two decimal places", "Give a whole number"), and any
  value that rounds to the answer at that precision is accepted; answers are written for people
  (thousands separators, the stated decimals, never `1.05e+07`).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from lessons.course.text import CONTENT_DIR

KINDS = ("single", "multi", "truefalse", "number")
DEFAULT_PASS_FRACTION = 0.8
TRUE_FALSE = ("True", "False")


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    prompt: str
    answer: Any  # int | list[int] | bool | float, by kind
    explanation: str
    choices: tuple[str, ...] = ()
    tolerance: float = 0.0  # number only: relative tolerance
    decimals: int | None = None  # number only: the rounding the prompt states (0 = whole number)


@dataclass(frozen=True)
class Quiz:
    title: str
    pass_fraction: float
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class QuizResult:
    correct: dict[str, bool]  # question id -> answered correctly
    score: float  # fraction in [0, 1]
    passed: bool


_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_DECIMALS = re.compile(r"\b(\d|one|two|three|four|five|six) decimal places?\b", re.IGNORECASE)
_WHOLE = re.compile(r"\bwhole number\b", re.IGNORECASE)


def stated_decimals(prompt: str) -> int | None:
    """The rounding a numeric prompt asks for: "Give two decimal places" -> 2, "Give a whole
    number" -> 0; None when the prompt states none."""
    if match := _DECIMALS.search(prompt):
        word = match.group(1).lower()
        return int(word) if word.isdigit() else _NUMBER_WORDS[word]
    return 0 if _WHOLE.search(prompt) else None


def format_number(value: float, decimals: int | None = None) -> str:
    """A number as people write it: 12582912 -> "12,582,912", 0.25 -> "0.25", 1e-5 -> "0.00001".

    With `decimals`, exactly that many ("0.250" for 3); without, up to six significant digits and
    no trailing zeros. Never scientific notation: a learner should not have to decode `1.05e+07`.
    """
    if not math.isfinite(value):
        return str(value)
    if decimals is None:
        magnitude = math.floor(math.log10(abs(value))) if value else 0
        decimals = max(0, 5 - magnitude)  # six significant digits
        text = f"{value:,.{decimals}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
    else:
        text = f"{value:,.{decimals}f}"
    return "0" if text in ("-0", "") else text


class QuizFormatError(ValueError):
    """A quiz file that does not follow the format in TEAM.md (the message names the question)."""


# --- Parsing -------------------------------------------------------------------------------


def parse_quiz(data: Mapping[str, Any]) -> Quiz:
    """Validate a quiz mapping (as read from TOML) and return it as a `Quiz`."""
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise QuizFormatError("a quiz needs at least one [[questions]] entry")
    questions = tuple(_parse_question(i, q) for i, q in enumerate(raw_questions))
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise QuizFormatError(f"question ids must be unique, got {ids}")
    pass_fraction = float(data.get("pass_fraction", DEFAULT_PASS_FRACTION))
    if not 0 < pass_fraction <= 1:
        raise QuizFormatError(f"pass_fraction must be in (0, 1], got {pass_fraction}")
    return Quiz(str(data.get("title", "Check your understanding")), pass_fraction, questions)


def _parse_question(index: int, raw: Any) -> Question:
    if not isinstance(raw, Mapping):
        raise QuizFormatError(f"question {index + 1} is not a table")
    qid, kind = str(raw.get("id", f"q{index + 1}")), raw.get("kind")
    where = f"question {qid!r}"
    if kind not in KINDS:
        raise QuizFormatError(f"{where}: kind must be one of {KINDS}, got {kind!r}")
    for field in ("prompt", "answer"):
        if field not in raw:
            raise QuizFormatError(f"{where}: missing {field!r}")
    choices = tuple(str(c) for c in raw.get("choices", ()))
    answer = raw["answer"]
    if kind in ("single", "multi") and len(choices) < 2:
        raise QuizFormatError(f"{where}: a {kind} question needs at least two choices")
    if kind == "single" and not _valid_index(answer, choices):
        raise QuizFormatError(f"{where}: answer must be a choice index, got {answer!r}")
    if kind == "multi":
        if not isinstance(answer, list) or not all(_valid_index(a, choices) for a in answer):
            raise QuizFormatError(f"{where}: answer must be a list of choice indices, got {answer!r}")
        answer = sorted(set(answer))
    if kind == "truefalse" and not isinstance(answer, bool):
        raise QuizFormatError(f"{where}: answer must be true or false, got {answer!r}")
    if kind == "number":
        if isinstance(answer, bool) or not isinstance(answer, int | float) or not math.isfinite(answer):
            raise QuizFormatError(f"{where}: answer must be a number, got {answer!r}")
        answer = float(answer)
    tolerance = float(raw.get("tolerance", 0.0))
    decimals = stated_decimals(str(raw["prompt"])) if kind == "number" else None
    return Question(qid, kind, str(raw["prompt"]), answer, str(raw.get("explanation", "")),
                    choices, tolerance, decimals)


def _valid_index(value: Any, choices: tuple[str, ...]) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(choices)


def load_quiz(number: int) -> Quiz | None:
    """Lesson `number`'s quiz, or None when its file is not there yet. Bad files raise."""
    path = CONTENT_DIR / f"lesson{number}" / "quiz.toml"
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            return parse_quiz(tomllib.load(f))
    except tomllib.TOMLDecodeError as e:
        raise QuizFormatError(f"{path.name}: {e}") from e


# --- Grading -------------------------------------------------------------------------------


def is_correct(question: Question, given: Any) -> bool:
    """Whether `given` (the widget's value; None when unanswered) answers `question`."""
    if given is None:
        return False
    if question.kind == "single":
        return given == question.answer
    if question.kind == "multi":
        return sorted(set(given)) == question.answer
    if question.kind == "truefalse":
        return bool(given) == question.answer
    try:
        value = float(given)
    except (TypeError, ValueError):
        return False
    # Relative tolerance as written in the file; exact answers of 0 need an absolute one.
    allowed = question.tolerance * abs(question.answer) if question.answer else question.tolerance
    if question.decimals is not None:
        # Anything that rounds to the answer at the stated precision: half a unit of its last
        # decimal either side (both ends included, as a learner may round a tie either way).
        allowed = max(allowed, 0.5 * 10.0 ** -question.decimals)
    # The slack absorbs binary floating point: 0.245 is stored a hair below 0.245.
    slack = 1e-9 * max(1.0, abs(question.answer))
    return math.isfinite(value) and abs(value - question.answer) <= allowed + slack


def is_blank(question: Question, given: Any) -> bool:
    """Whether the learner left `question` unanswered (no choice picked, no number typed)."""
    return given is None or (question.kind == "multi" and not given)


def grade(quiz: Quiz, answers: Mapping[str, Any]) -> QuizResult:
    """Score `answers` (question id -> given value); unanswered questions count as wrong."""
    correct = {q.id: is_correct(q, answers.get(q.id)) for q in quiz.questions}
    score = sum(correct.values()) / len(quiz.questions)
    return QuizResult(correct, score, score >= quiz.pass_fraction - 1e-9)


# --- Streamlit -----------------------------------------------------------------------------


def render_quiz(number: int, on_result: Callable[[QuizResult], str | None],
                rerun_too: Sequence[str] = ()) -> None:
    """Draw lesson `number`'s quiz; call `on_result` once per submitted attempt.

    `on_result` records the result and returns a notice to show with it (or None). The quiz is
    a keyed fragment: submitting reruns the quiz and the fragments named in `rerun_too` (the
    sidebar's "k / 5 completed"), retrying reruns the quiz alone, and the lesson's charts above
    it are not drawn again for nothing (a full rerun cost the browser about 1 s per submit).
    """
    try:
        quiz = load_quiz(number)
    except QuizFormatError as e:
        st.warning(f"The quiz for this lesson could not be loaded ({e}).")
        return
    if quiz is None:
        st.info("The quiz for this lesson is not written yet.")
        return
    keys = _Keys.of(number)
    st.fragment(_quiz_panel, key=keys.fragment)(quiz, keys, on_result, [keys.fragment, *rerun_too])


@dataclass(frozen=True)
class _Keys:
    """Session-state and fragment keys of one lesson's quiz."""

    number: int
    fragment: str
    attempt: str
    result: str
    notice: str
    refused: str  # the last submission had no answer: say so, grade nothing
    reveal: str  # the learner asked to see the answers of a failed attempt

    @classmethod
    def of(cls, number: int) -> _Keys:
        prefix = f"quiz{number}_"
        return cls(number, prefix + "panel", prefix + "attempt", prefix + "result", prefix + "notice",
                   prefix + "refused", prefix + "reveal")

    def answer(self, attempt: int, q: Question) -> str:
        return f"quiz{self.number}_{attempt}_{q.id}"


QUIZ_ANCHOR = "quiz"  # the quiz heading's id: lesson pages link to it ("Skip to the quiz")
EMPTY_NOTICE = "Answer at least one question before submitting: nothing was graded or recorded."


def _quiz_panel(quiz: Quiz, keys: _Keys, on_result: Callable[[QuizResult], str | None],
                rerun: list[str]) -> None:
    state = st.session_state
    attempt = state.setdefault(keys.attempt, 0)
    # h2, as the page's sections; the "quiz" anchor is the target of the lesson's "Skip to the quiz".
    st.header(quiz.title, anchor=QUIZ_ANCHOR)
    st.caption(f"{len(quiz.questions)} questions · pass with {quiz.pass_fraction:.0%} or more · "
               "retry as often as you like; your best score is kept.")
    with st.form(f"quiz{keys.number}_form_{attempt}", border=True):
        for i, q in enumerate(quiz.questions, start=1):
            _question_widget(q, i, keys.answer(attempt, q))
        st.form_submit_button("Submit answers", type="primary", on_click=_submit,
                              args=(quiz, keys, attempt, on_result, rerun))
    if state.get(keys.refused):
        st.warning(EMPTY_NOTICE, icon=":material/edit_note:")
    if notice := state.get(keys.notice):
        st.warning(notice, icon=":material/cloud_off:")
    result = state.get(keys.result)
    if result is None:
        return
    reveal = result.passed or bool(state.get(keys.reveal))
    _show_feedback(quiz, result, reveal)
    left, right = st.columns(2)
    left.button("Try again", key=f"quiz{keys.number}_retry_{attempt}", icon=":material/replay:",
                on_click=_retry, args=(keys,))
    if not reveal:
        right.button("Show the answers", key=f"quiz{keys.number}_reveal_{attempt}",
                     icon=":material/visibility:", on_click=_reveal, args=(keys,))


def _submit(quiz: Quiz, keys: _Keys, attempt: int, on_result: Callable[[QuizResult], str | None],
            rerun: list[str]) -> None:
    """Form callback: grade the answers in session state, record the result, rerun `rerun`.

    A submission with every question blank is refused: no grade, no attempt recorded."""
    answers = {q.id: _read_answer(q, keys.answer(attempt, q)) for q in quiz.questions}
    if all(is_blank(q, answers[q.id]) for q in quiz.questions):
        st.session_state[keys.refused] = True
        return  # the form's own rerun redraws the quiz with the notice
    result = grade(quiz, answers)
    st.session_state[keys.refused] = False
    st.session_state[keys.reveal] = False
    st.session_state[keys.result] = result
    st.session_state[keys.notice] = on_result(result)
    st.rerun(rerun)


def _retry(keys: _Keys) -> None:
    """Button callback: new widget keys, so the click's rerun of the quiz draws a blank form."""
    st.session_state[keys.attempt] += 1
    for key in (keys.result, keys.notice, keys.refused, keys.reveal):
        st.session_state.pop(key, None)


def _reveal(keys: _Keys) -> None:
    st.session_state[keys.reveal] = True


def _question_widget(q: Question, index: int, key: str) -> None:
    st.markdown(f"**Question {index}.** {q.prompt}")
    label = f"Answer to question {index}"
    if q.kind == "single":
        st.radio(label, range(len(q.choices)), format_func=q.choices.__getitem__, index=None, key=key,
                 label_visibility="collapsed")
    elif q.kind == "multi":
        if "all that apply" not in q.prompt.lower():
            st.caption("Select all that apply.")
        for i, c in enumerate(q.choices):
            st.checkbox(c, key=f"{key}_{i}")
    elif q.kind == "truefalse":
        st.radio(label, TRUE_FALSE, index=None, key=key, horizontal=True, label_visibility="collapsed")
    else:
        # The stated rounding as the display format: "%g" would show 12582912 as 1.25829e+07.
        fmt = "%g" if q.decimals is None else f"%.{q.decimals}f"
        st.number_input(label, value=None, format=fmt, step=None, key=key, placeholder="Type a number",
                        label_visibility="collapsed")


def _read_answer(q: Question, key: str) -> Any:
    """The answer `_question_widget(q, ..., key)` holds, in the form `grade` takes."""
    state = st.session_state
    if q.kind == "multi":
        return [i for i in range(len(q.choices)) if state.get(f"{key}_{i}")]
    value = state.get(key)
    if q.kind == "truefalse":
        return None if value is None else value == "True"
    return value


def _show_feedback(quiz: Quiz, result: QuizResult, reveal: bool) -> None:
    """Right or wrong per question; the answers and explanations only when `reveal`."""
    for i, q in enumerate(quiz.questions, start=1):
        ok = result.correct[q.id]
        icon = ":material/check_circle:" if ok else ":material/cancel:"
        if reveal:
            verdict = "Correct" if ok else f"Not quite — the answer is {answer_text(q)}"
            (st.success if ok else st.error)(f"**Question {i}: {verdict}.** {q.explanation}", icon=icon)
        elif ok:
            st.success(f"**Question {i}: Correct.**", icon=icon)
        else:
            st.error(f"**Question {i}: Not quite.** Look at this question again.", icon=icon)
    right = sum(result.correct.values())
    message = f"You scored {right} / {len(quiz.questions)} ({result.score:.0%})."
    if result.passed:
        st.success(f"{message} Lesson passed — well done!", icon=":material/celebration:")
    elif reveal:
        st.warning(f"{message} You need {quiz.pass_fraction:.0%} to pass: read the explanations "
                   "above and try again.", icon=":material/school:")
    else:
        st.warning(f"{message} You need {quiz.pass_fraction:.0%} to pass: try again, or show the "
                   "answers with their explanations.", icon=":material/school:")


def answer_text(q: Question) -> str:
    """The correct answer of `q` as shown to a learner."""
    if q.kind == "single":
        return f"“{q.choices[q.answer]}”"
    if q.kind == "multi":
        return ", ".join(f"“{q.choices[i]}”" for i in q.answer) or "none of them"
    if q.kind == "truefalse":
        return "true" if q.answer else "false"
    return format_number(q.answer, q.decimals)
