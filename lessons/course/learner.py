"""Who is learning on this run (contract 5 of shared/DESIGN.md).

1. Signed in (`st.login` configured and used): the account is the learner, `sso:<account id>`; no
   URL parameter can change that (`?learner=` and `?resume=` are dropped with a notice).
2. Otherwise a private id, `browser:<token>` (`identity.new_token`: 128 random bits), found in
   this order: a "resume on another device" link (`?resume=TOKEN`, which this browser then keeps),
   this session, the browser's cookie (`browser_memory`), else a new one. The browser is told to
   keep it on every run where it did not send it.
3. The name a learner types is a display name (`learners` table) and opens nothing. An old
   `?learner=NAME` link (progress used to be stored under the name) moves what is stored under
   NAME to this browser's id, once, and makes NAME the display name; afterwards the name alone
   opens nothing. The parameter is then removed from the address.

Learner-typed text is only ever drawn through `render.md_escape` (notices are Markdown too).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from lessons.course import browser_memory
from lessons.course.identity import (
    DEFAULT_LEARNER,
    SIGNED_IN_PREFIX,
    browser_learner,
    is_reserved,
    new_token,
    normalize_learner_name,
    parse_token,
)
from lessons.course.progress import ProgressStore, ProgressUnavailable
from lessons.course.render import md_escape

_log = logging.getLogger(__name__)

LEARNER_PARAM = "learner"  # old links: ?learner=NAME
RESUME_PARAM = "resume"  # ?resume=TOKEN, the "resume on another device" link
_TOKEN = "learner_token"  # this session's token
_NAMES = "learner_names"  # {learner key: display name} read or set in this session
_NAMES_UNSAVED = "learner_names_unsaved"  # keys whose display name the store could not save yet
_CURRENT = "learner_current"  # the Learner this run resolved (predict.py reads it)
_CLAIMS = "learner_pending_claims"  # {learner key: {old names the store could not move yet}}
_RESERVED_NOTICE = ("Names starting with “sso:” or “browser:” look like private learner ids, so "
                    "that name was not used; pick another.")


@dataclass(frozen=True)
class Learner:
    key: str  # the progress store's learner id: "browser:<token>" or "sso:<account>"
    display: str  # what the page shows, always through md_escape
    signed_in: bool = False
    chosen: bool = False  # False while the display name is the default nobody picked
    token: str | None = None  # the browser learner's token (for the resume link); None if signed in


@st.cache_resource(show_spinner=False)
def _open_store(url: str | None) -> ProgressStore:
    return ProgressStore(url)  # shared by all sessions; the store itself is thread-safe


def get_store() -> ProgressStore:
    """The store for the configured URL (opened once per URL); raises ProgressUnavailable."""
    from lessons.course.progress import default_url

    return _open_store(default_url())


def current_learner() -> Learner | None:
    """The learner `resolve_learner` found on this run (None before it ran)."""
    return st.session_state.get(_CURRENT)


def resolve_learner(notices: list[str]) -> Learner:
    """Who is learning on this run; appends short notices for anything odd in the URL."""
    learner = _signed_in_learner(notices) or _browser_learner(notices)
    st.session_state[_CURRENT] = learner
    return learner


def _signed_in_learner(notices: list[str]) -> Learner | None:
    user = st.user
    if user.get("is_logged_in") is not True:
        return None
    stable = str(user.get("sub") or user.get("email") or "")
    if not stable:
        return None
    for param in (LEARNER_PARAM, RESUME_PARAM):
        if param in st.query_params:
            del st.query_params[param]
            notices.append("You are signed in, so the learner in the link was ignored.")
    key = SIGNED_IN_PREFIX + stable
    canonical = normalize_learner_name(key)
    if canonical.was_cut or canonical.name != key:
        key = SIGNED_IN_PREFIX + hashlib.sha256(stable.encode()).hexdigest()[:40]  # stable, fits 64 chars
    display = str(user.get("name") or user.get("email") or "signed-in learner")
    return Learner(key, display, signed_in=True, chosen=True)


def _browser_learner(notices: list[str]) -> Learner:
    token = _resume_token(notices) or st.session_state.get(_TOKEN) or browser_memory.remembered_token()
    token = token or new_token()
    st.session_state[_TOKEN] = token
    if browser_memory.remembered_token() != token:
        browser_memory.remember(token)
    key = browser_learner(token)
    if LEARNER_PARAM in st.query_params:
        _open_old_link(key, notices)
    elif st.session_state.get(_CLAIMS, {}).get(key):
        _retry_claims(key)
    elif key in st.session_state.get(_NAMES_UNSAVED, ()):
        _set_display_name(key, st.session_state[_NAMES].get(key))
    display = _display_name(key)
    return Learner(key, display or DEFAULT_LEARNER, chosen=display is not None, token=token)


def _resume_token(notices: list[str]) -> str | None:
    if RESUME_PARAM not in st.query_params:
        return None
    raw = st.query_params.get(RESUME_PARAM)
    del st.query_params[RESUME_PARAM]  # the address bar (and a screenshot of it) never shows it
    token = parse_token(raw)
    if token is None:
        notices.append("The resume link is incomplete or mistyped, so it was ignored. "
                       "Copy the whole link again from the device you learned on.")
    elif token != st.session_state.get(_TOKEN):
        notices.append("Welcome back: this browser now continues the progress of your resume link.")
    return token


def _open_old_link(key: str, notices: list[str]) -> None:
    """`?learner=NAME`: move NAME's old progress here once; NAME becomes the display name."""
    cleaned = normalize_learner_name(st.query_params.get(LEARNER_PARAM))
    del st.query_params[LEARNER_PARAM]
    if cleaned.was_empty:
        notices.append("The learner name in the link was empty, so it was ignored.")
        return
    if is_reserved(cleaned.name):
        notices.append(_RESERVED_NOTICE)
        return
    if cleaned.was_cut:
        notices.append("The learner name in the link was cut to its first 64 characters.")
    name = cleaned.name
    _set_display_name(key, name)
    try:
        moved = get_store().claim_name(name, key)
    except ProgressUnavailable as e:  # shown all the same (load_progress), and moved later
        st.session_state.setdefault(_CLAIMS, {}).setdefault(key, set()).add(name)
        notices.append(str(e))
        return
    if moved:
        notices.append(f"Welcome back! The progress saved under the name “{md_escape(name)}” now "
                       "belongs to this browser. The name alone no longer opens it: to continue on "
                       "another device, use your resume link on the home page.")


def pending_claims(learner: Learner) -> list[str]:
    """Old names whose progress this learner opened by link but the store could not move yet
    (`load_progress` shows that progress all the same; each run tries the move again)."""
    return sorted(st.session_state.get(_CLAIMS, {}).get(learner.key, ()))


def forget_claims(learner: Learner) -> None:
    st.session_state.get(_CLAIMS, {}).pop(learner.key, None)


def _retry_claims(key: str) -> None:
    names = st.session_state.get(_CLAIMS, {}).get(key, set())
    for name in sorted(names):
        try:
            get_store().claim_name(name, key)
        except ProgressUnavailable:
            return  # still down: keep them for the next run
        names.discard(name)
        _set_display_name(key, st.session_state.get(_NAMES, {}).get(key) or name)  # not saved either


def _display_name(key: str) -> str | None:
    names = st.session_state.setdefault(_NAMES, {})
    if key not in names:
        try:
            names[key] = get_store().display_name(key)
        except ProgressUnavailable:
            return None  # load_progress tells the learner; read again next run
    return names[key]


def _set_display_name(key: str, name: str | None) -> None:
    """Show `name` for `key`; if the store is down, for this session, saved on a later run."""
    st.session_state.setdefault(_NAMES, {})[key] = name
    unsaved = st.session_state.setdefault(_NAMES_UNSAVED, set())
    unsaved.discard(key)
    if name is not None:
        try:
            get_store().set_display_name(key, name)
        except ProgressUnavailable:  # load_progress tells the learner the store is down
            unsaved.add(key)


def choose_learner(raw: str, notices: list[str]) -> str:
    """Set the display name typed on the home page; returns the name now shown."""
    learner = current_learner() or resolve_learner(notices)
    cleaned = normalize_learner_name(raw)
    if is_reserved(cleaned.name):
        notices.append(_RESERVED_NOTICE)
        return learner.display
    if cleaned.was_cut:
        notices.append("Your name was cut to its first 64 characters.")
    if cleaned.was_empty:
        notices.append(f"No name was given, so you are shown as “{DEFAULT_LEARNER}”.")
        return learner.display
    _set_display_name(learner.key, cleaned.name)
    return cleaned.name


def start_new_learner() -> None:
    """This browser starts over as a new learner (a shared computer); the old id's progress stays
    stored and opens again with its resume link. A callback: the next run tells the browser."""
    st.session_state[_TOKEN] = new_token()


def resume_link(learner: Learner) -> str | None:
    """The address that continues this learner's progress in another browser (None if signed in)."""
    if learner.token is None:
        return None
    try:
        here = urlsplit(st.context.url or "")
    except Exception:
        here = urlsplit("")
    if not (here.scheme and here.netloc):
        here = urlsplit("http://localhost:8501/")
    query = urlencode({RESUME_PARAM: learner.token})
    return urlunsplit((here.scheme, here.netloc, here.path or "/", query, ""))  # called on the home page


def link_params(learner: Learner) -> dict[str, str] | None:
    """Query parameters a page link carries: none; the session and the browser know the learner."""
    return None
