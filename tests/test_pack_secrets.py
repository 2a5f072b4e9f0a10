"""Secrets never appear in any tier of a pack."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot._pack.secrets import credential_file_reason, find_secrets, redact

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GITHUB_TOKEN = "ghp_4xZ9qLmN2pR7sT1vW3yB5cD8fG0hJ6kK9mQw"
PASSWORD = "Tr0ub4dor-and-3"
KEY_BODY = "MIIEowIBAAKCAQEA7bq9xZsqfLwGk2nVQ8pYt3rM1uJdH0cKeW5oXyTgNvBhRiLa"
PRIVATE_KEY = (
    f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n{KEY_BODY[::-1]}\n-----END RSA PRIVATE KEY-----\n"
)
SECRETS = (AWS_KEY, AWS_SECRET, GITHUB_TOKEN, PASSWORD, KEY_BODY, KEY_BODY[::-1])

# one planted secret per file type, each in a form people really write
PLANTED: dict[str, str] = {
    "app/settings.py": (
        f'import os\n\nAWS_ACCESS_KEY_ID = "{AWS_KEY}"\n\n'
        f'def connect(user, password="{PASSWORD}"):\n    """Connect to the database."""\n    return user\n'
    ),
    "web/client.js": (
        f'const token = "{GITHUB_TOKEN}";\nfunction fetchRepos(org) {{\n  return token + org;\n}}\n'
    ),
    "deploy/config.yaml": (
        f"database:\n  user: app\n  password: {PASSWORD}\naws:\n  secret_access_key: {AWS_SECRET}\n"
    ),
    "deploy/app.ini": f"[db]\nhost = localhost\npassword = {PASSWORD}\n",
    "scripts/deploy.sh": (
        f"#!/bin/sh\nexport GITHUB_TOKEN={GITHUB_TOKEN}\nexport DB_PASSWORD={PASSWORD}\n./run\n"
    ),
    "conf/settings.toml": f'[aws]\naws_secret_access_key = "{AWS_SECRET}"\nregion = "eu-west-1"\n',
    "conf/service.json": f'{{"name": "svc", "api_key": "{AWS_SECRET}"}}\n',
    "keys/embedded.py": f'KEY = """{PRIVATE_KEY}"""\n\ndef load_key():\n    return KEY\n',
    "README.md": f"# Service\n\nSet the token, e.g. `{GITHUB_TOKEN}`.\n",
}
NAMED_CREDENTIALS = {
    ".env": f"DB_PASSWORD={PASSWORD}\n",
    "id_rsa": PRIVATE_KEY,
    "certs/server.pem": PRIVATE_KEY,
}


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budget=st.integers(150, 6000),
    fmt=st.sampled_from(["xml", "markdown", "plain"]),
    task=st.sampled_from(
        ["connect to the database", "fetch repos with the token", "deploy config password", "load_key"]
    ),
    names=st.lists(st.sampled_from(sorted(PLANTED)), min_size=1, max_size=len(PLANTED), unique=True),
)
def test_planted_secrets_never_appear_in_any_tier(
    tmp_path_factory: pytest.TempPathFactory, budget: int, fmt: str, task: str, names: list[str]
) -> None:
    root = tmp_path_factory.mktemp("repo")
    _write(root, {name: PLANTED[name] for name in names} | NAMED_CREDENTIALS)
    result = tp.pack(root, task, budget, "gpt-4o", format=fmt, cache=False)
    _assert_clean(result.text)


def test_secret_in_a_signature_is_absent_from_the_outline_tier(tmp_path: Path) -> None:
    body = "\n".join(f"    step_{i} = user + {i}" for i in range(400))
    _write(
        tmp_path, {"app/db.py": PLANTED["app/settings.py"].replace("return user", body + "\n    return user")}
    )
    result = tp.pack(tmp_path, "connect to the database", 400, "gpt-4o", cache=False)
    tiers = {f.path: f.tier for f in result.files}
    assert tiers["app/db.py"] == "outline"
    _assert_clean(result.text)


def test_redactions_are_listed_with_path_line_and_kind(tmp_path: Path) -> None:
    _write(tmp_path, {"app/settings.py": PLANTED["app/settings.py"]})
    result = tp.pack(tmp_path, "settings connect", 4000, "gpt-4o", cache=False)
    assert ("app/settings.py", 3, "AWS Access Key") in {(r.path, r.line, r.kind) for r in result.redacted}
    assert "⟦redacted: AWS Access Key⟧" in result.text


def test_drop_mode_leaves_files_with_secrets_out_and_says_so(tmp_path: Path) -> None:
    _write(
        tmp_path, {"app/settings.py": PLANTED["app/settings.py"], "app/clean.py": "def ok():\n    return 1\n"}
    )
    result = tp.pack(tmp_path, "settings connect", 4000, "gpt-4o", cache=False, secrets="drop")
    assert "app/settings.py" not in {f.path for f in result.files}
    assert any(e.path == "app/settings.py" and "secrets" in e.reason for e in result.excluded)
    _assert_clean(result.text)


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.production",
        "id_rsa",
        "id_ed25519",
        "certs/server.pem",
        ".aws/credentials",
        "secrets.yaml",
        ".npmrc",
    ],
)
def test_credential_files_are_excluded_by_name(path: str) -> None:
    assert credential_file_reason(path) is not None


@pytest.mark.parametrize("path", [".env.example", "src/env.py", "docs/secrets.md", "keys.py"])
def test_ordinary_files_are_not_taken_for_credential_files(path: str) -> None:
    assert credential_file_reason(path) is None


def test_named_credential_files_are_reported_as_excluded(tmp_path: Path) -> None:
    _write(tmp_path, NAMED_CREDENTIALS | {"main.py": "print(1)\n"})
    result = tp.pack(tmp_path, "main", 2000, "gpt-4o", cache=False)
    reasons = {e.path: e.reason for e in result.excluded}
    assert set(NAMED_CREDENTIALS) <= set(reasons)
    _assert_clean(result.text)


def test_private_key_block_is_redacted_on_every_line() -> None:
    text = f"x = 1\n{PRIVATE_KEY}y = 2\n"
    redacted = redact(text, find_secrets("k.txt", text))
    assert KEY_BODY not in redacted
    assert redacted.startswith("x = 1\n") and redacted.endswith("y = 2\n")


def test_ordinary_code_is_not_redacted() -> None:
    text = (
        "def parse(tokens):\n    token = tokens[0]\n"
        "    password_field = form.get('password')\n    return token\n"
    )
    assert find_secrets("parse.py", text) == ()
