"""Translatable: pages render in a second language (the app's small French catalogue),
the compiled catalogue matches its source, and no template text escapes translation.

The ``.mo`` file is committed (the wheel ships it; nothing compiles at run time and CI
needs no GNU gettext): :func:`test_compiled_catalogue_matches_its_source` reads the
``.po`` in Python and checks every translation it holds is the ``.mo``'s.
"""

from __future__ import annotations

import ast
import gettext
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import translation

from dagstream_app import services
from dagstream_app.models import Dag

APP = Path(__file__).resolve().parent.parent / "dagstream_app"
CATALOGUE = APP / "locale" / "fr" / "LC_MESSAGES"
FRENCH = {"HTTP_ACCEPT_LANGUAGE": "fr"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _back_to_the_default_language() -> Iterator[None]:
    """LocaleMiddleware leaves the language it chose active in the test's thread: the
    tests after these would render in French."""
    yield
    translation.deactivate()


@pytest.fixture
def dag(db: Any) -> Dag:
    dag = services.create_dag(
        "fr-1", name="etl", nodes=["extract", "review"], edges=[("extract", "review")], budget=5.0
    )
    services.reports("fr-1").cost(spent=1234.5)
    services.reports("fr-1").node_state("extract", "completed")
    services.open_gate("fr-1", "review", {"title": "Ship it?", "rows": 1200})
    return dag


def _client(make_user: Any, *perms: str) -> Client:
    client = Client()
    client.force_login(make_user(*perms))
    return client


def _page(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url, **FRENCH)  # type: ignore[arg-type]
    assert response.status_code == status, url
    return response.content.decode()


def _says(html: str, french: list[str], english: list[str]) -> None:
    for word in french:
        assert word in html, word
    for word in english:
        assert f">{word}<" not in html and f'"{word}"' not in html, word


def test_run_list_in_french(dag: Dag, make_user: Any) -> None:
    html = _page(_client(make_user, "view_dag"), "/dags/")
    assert '<html lang="fr"' in html
    _says(
        html,
        ["Exécutions", "Tous les statuts", "Dépensé / budget", "1 décision requise", "1 exécution"],
        ["Runs", "All statuses", "Filter", "Spent / budget"],
    )
    assert "1\xa0234,50" in html  # money in French separators
    assert 'ws-connect="/ws/dags/?ids=fr-1&amp;lang=fr"' in html  # the stream's language


def test_run_detail_with_a_waiting_gate_in_french(dag: Dag, make_user: Any) -> None:
    client = _client(make_user, "view_dag", "decide_gate", "control_dag")
    html = _page(client, "/dags/fr-1/")
    _says(
        html,
        ["Graphe", "Commandes", "Validations humaines", "Approuver", "Rejeter", "Suspendre"],
        ["Graph", "Controls", "Human gates", "Approve", "Reject", "Pause", "Cancel", "Cost"],
    )
    assert "Terminé" in html and "Chronologie" in html
    assert '"live": "En direct"' in html  # the scripts' words
    assert 'ws-connect="/ws/dags/fr-1/html/?lang=fr"' in html


def test_history_page_in_french(dag: Dag, make_user: Any) -> None:
    html = _page(_client(make_user, "view_dag"), "/dags/fr-1/history/")
    _says(html, ["Historique", "Retour au direct", "reconstruit à partir"], ["History"])


def test_login_and_refusal_pages_in_french(dag: Dag, make_user: Any) -> None:
    login = _page(Client(), "/accounts/login/")
    _says(login, ["Se connecter", "Mot de passe"], ["Sign in", "Password"])
    refused = _page(_client(make_user), "/dags/", 403)
    _says(refused, ["Accès refusé", "Retour aux exécutions"], ["No access", "Back to runs"])


def test_admin_change_page_with_dagstreams_additions_in_french(dag: Dag, db: Any) -> None:
    admin = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin)
    dag_page = _page(client, "/admin/dagstream_app/dag/fr-1/change/")
    _says(dag_page, ["Événements (les plus récents d\u2019abord", "Suspendre"], ["Pause"])
    gate = dag.gates.get()
    gate_page = _page(client, f"/admin/dagstream_app/gate/{gate.pk}/change/")
    _says(gate_page, ["Décision", "Approuver"], ["Decision", "Approve"])


def test_live_fragments_render_in_the_streams_language(dag: Dag) -> None:
    from dagstream_app import live, state

    frames = state.event_frames("fr-1", 0)
    french = live.events_html("fr-1", frames, (True, True), "fr")
    english = live.events_html("fr-1", frames, (True, True))
    assert "Validations" not in english and "Approve" in english
    assert "Approuver" in french and ">Approve<" not in french


# ------------------------------------------------------------ the catalogue


def _po_entries(path: Path) -> dict[tuple[str | None, str], list[str]]:
    """(msgctxt, msgid) -> its msgstr(s), for the translated, non-fuzzy entries."""
    found: dict[tuple[str | None, str], list[str]] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        if "#, fuzzy" in block:
            continue
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith('"'):
                fields[key] += ast.literal_eval(line)
            else:
                key, _, rest = line.partition(" ")
                fields[key] = ast.literal_eval(rest)
        if not fields.get("msgid"):
            continue
        strs = [v for k, v in sorted(fields.items()) if k.startswith("msgstr")]
        if all(strs):
            found[(fields.get("msgctxt"), fields["msgid"])] = strs
    return found


def test_compiled_catalogue_matches_its_source() -> None:
    entries = _po_entries(CATALOGUE / "django.po")
    assert len(entries) > 50
    with (CATALOGUE / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for (context, msgid), strs in entries.items():
        if len(strs) > 1:
            continue
        said = compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)
        assert said == strs[0], f"{msgid!r}: run compilemessages"


# ------------------------------------------------------------ nothing left bare

# Text a template may show as it is: symbols, numbers, the brand.
ALLOWED = {"dagstream", "UTC", "·", "/", "—", "%", "#", "+", "\u2212", ":", "(", ")", ","}
TAG = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
TRANSLATED = re.compile(
    r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}",
    re.S,
)
ATTRS = re.compile(r'\b(?:title|aria-label|placeholder|alt|hx-confirm)="([^"]*)"')


def _bare_words(source: str) -> list[str]:
    source = TRANSLATED.sub(" ", source)
    source = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", source, flags=re.S)
    source = TAG.sub(" ", source)  # what a tag or variable says is checked where it is made
    found = [m.group(1) for m in ATTRS.finditer(source)]
    found += re.findall(r">([^<>]+)<", source)
    words = []
    for text in found:
        for piece in text.split():
            if re.fullmatch(r"&\w+;", piece):
                continue
            if piece not in ALLOWED and re.search(r"[A-Za-z]{2,}", piece):
                words.append(piece)
    return words


TEMPLATES = sorted((APP / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(APP)))
def test_no_template_text_is_left_untranslated(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    # htmx-config and the like are data, not words.
    text = re.sub(r"<meta[^>]*>", " ", text)
    assert _bare_words(text) == [], template
