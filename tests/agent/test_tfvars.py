"""The job's Terraform variables file: HCL values verbatim, strings quoted so Terraform reads back exactly them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from app.agent.tfvars import TFVARS_FILE, InvalidVariable, Variable, hcl_string, render_tfvars
from tests.e2e.terraform_cli import terraform_1_0_3

TRICKY = [
    "plain",
    "",
    'quote " and backslash \\ and \\"',
    "${var.injected}",
    "%{ if true }directive%{ endif }",
    "$${already escaped}",
    "$$",
    "100%",
    "line one\nline two\r\n\ttabbed",
    "control \x01\x1f\x7f",
    "unicode ünï 🎉",
    "trailing backslash \\",
]


def test_strings_are_quoted_and_escaped() -> None:
    assert hcl_string('a"b\\c') == '"a\\"b\\\\c"'
    assert hcl_string("${x} %{y} $z %w") == '"$${x} %%{y} $z %w"'
    assert hcl_string("a\nb\tc\rd") == '"a\\nb\\tc\\rd"'
    assert hcl_string("\x01") == '"\\u0001"'


def test_hcl_values_are_written_verbatim_and_env_variables_not_at_all() -> None:
    text = render_tfvars(
        [
            Variable("tags", '{ team = "net" }', hcl=True),
            Variable("name", "web"),
            Variable("AWS_REGION", "eu-west-1", category="env"),
            Variable("doc", "<<EOT\nhello\nEOT", hcl=True),
        ]
    )
    assert text == 'tags = { team = "net" }\nname = "web"\ndoc = <<EOT\nhello\nEOT\n'


def test_invalid_or_repeated_keys_are_refused_without_the_value() -> None:
    with pytest.raises(InvalidVariable, match="not a valid Terraform variable name") as invalid:
        render_tfvars([Variable("bad key = 1\nx", "s3cret")])
    assert "s3cret" not in str(invalid.value)
    with pytest.raises(InvalidVariable, match="given twice"):
        render_tfvars([Variable("a", "1"), Variable("a", "2")])


def test_terraform_reads_every_tricky_string_back_exactly(tmp_path: Path) -> None:
    names = [f"v{index}" for index in range(len(TRICKY))]
    declared = "".join(f'variable "{n}" {{ type = string }}\noutput "{n}" {{ value = var.{n} }}\n' for n in names)
    (tmp_path / "main.tf").write_text(declared)
    (tmp_path / TFVARS_FILE).write_text(render_tfvars(Variable(n, v) for n, v in zip(names, TRICKY, strict=True)))
    env = {"PATH": os.environ.get("PATH", ""), "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull}
    binary = str(terraform_1_0_3().path)
    applied = subprocess.run(
        [binary, "apply", "-auto-approve", "-no-color", "-input=false"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    outputs = subprocess.run(
        [binary, "output", "-json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    found = {name: item["value"] for name, item in json.loads(outputs.stdout).items()}
    assert found == dict(zip(names, TRICKY, strict=True))
