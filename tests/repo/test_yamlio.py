"""Safe, bounded YAML loading and pointer-to-position mapping."""

from __future__ import annotations

import time

import pytest
import yaml

from reconciler.errors import DocumentError
from reconciler.model.pointer import pointer_of
from reconciler.repo.yamlio import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, load_yaml, locate


def fails(data: bytes) -> DocumentError:
    with pytest.raises(DocumentError) as info:
        load_yaml(data, "changes/x.yaml")
    assert str(info.value).startswith("changes/x.yaml")
    return info.value


def test_loads_the_same_data_as_safe_load_for_ordinary_documents() -> None:
    text = b"""
a: 1
b: [1.5, -2, "3", null, true, false, ~]
c:
  d: x
  e: 'y'
  f: |
    multi
    line
g:
  - key: email
    value: ["@acme.com", 0x1f]
"""
    assert load_yaml(text, "f.yaml") == yaml.safe_load(text)


def test_scalars_follow_the_yaml_1_2_core_schema() -> None:
    data = load_yaml(b"a: [no, yes, on, off, 2024-01-01, 0o17, 1e3, .inf, '1', !!str 5, !!float 2]", "f")
    assert data == {"a": ["no", "yes", "on", "off", "2024-01-01", 15, 1000.0, float("inf"), "1", "5", 2.0]}


def test_keys_are_always_strings() -> None:
    assert load_yaml(b"payloads: {true: 1, 2: b}", "f") == {"payloads": {"true": 1, "2": "b"}}


def test_duplicate_key_names_the_second_occurrence() -> None:
    err = fails(b"a: 1\nb:\n  c: 1\n  c: 2\n")
    assert (err.line, err.column) == (4, 3)
    assert "duplicate key 'c'" in err.message


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        (b"a: !!python/object/apply:os.system [ls]", "python/object/apply:os.system"),
        (b"a: !!binary aGk=", "binary"),
        (b"a: !!timestamp 2024-01-01", "timestamp"),
        (b"a: !custom x", "!custom"),
        (b"a: !!set {x}", "set"),
    ],
)
def test_non_standard_tags_are_refused(text: bytes, tag: str) -> None:
    err = fails(text)
    assert tag in err.message and "not allowed" in err.message
    assert (err.line, err.column) == (1, 4)


def test_explicit_core_tag_with_a_wrong_value_is_refused() -> None:
    assert "'x' is not a valid int" in fails(b"a: !!int x").message


def test_non_utf8_bytes_give_line_and_column_of_the_first_bad_byte() -> None:
    err = fails(b"a: 1\nb: caf\xe9\n")
    assert (err.line, err.column) == (2, 7)
    assert "not UTF-8" in err.message


def test_utf8_bom_is_accepted() -> None:
    assert load_yaml("\ufeffa: é".encode(), "f") == {"a": "é"}


def test_file_over_one_mebibyte_is_refused_before_parsing() -> None:
    err = fails(b"a: " + b"x" * MAX_FILE_BYTES)
    assert "larger than 1024 KiB" in err.message


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    err = fails(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert err.message.startswith(f"nesting deeper than {MAX_DEPTH} levels")
    assert load_yaml(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, "f") is not None


def test_pathological_depth_fails_without_crashing_the_interpreter() -> None:
    # Half a million open brackets would overflow the C stack of a recursive composer.
    err = fails(b"[" * 500_000)
    assert (err.line, err.column) == (1, MAX_DEPTH + 1)


def test_billion_laughs_fails_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    started = time.perf_counter()
    err = fails("\n".join(lines).encode())
    assert f"more than {MAX_ALIAS_NODES} nodes" in err.message
    assert time.perf_counter() - started < 1.0  # bounded work, not a timing target


def test_small_aliases_are_expanded() -> None:
    assert load_yaml(b"a: &x {k: 1}\nb: *x\n", "f") == {"a": {"k": 1}, "b": {"k": 1}}


def test_alias_that_contains_itself_is_refused() -> None:
    assert "an alias refers to itself" in fails(b"a: &a [*a]\n").message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "the file is empty"),
        (b"# only a comment\n", "the file is empty"),
        (b"a: 1\n---\nb: 2\n", "expected a single document"),
        (b"a: [1,\n", "not valid YAML"),
        (b"a: *nowhere\n", "undefined alias"),
        (b"? [a]\n: b\n", "mapping key must be a plain string"),
        (b"<<: {a: 1}\n", "merge keys"),
        (b"a: \x07\n", "control characters are not allowed"),
    ],
)
def test_other_malformed_files_are_document_errors(text: bytes, message: str) -> None:
    err = fails(text)
    assert message in err.message
    assert err.line is not None


DOC = b"""apiVersion: reconciler/v1
kind: ChangeRequest
metadata:
  name: x
spec:
  instructions:
    - kind: updateRollout
      percentage: 150
    - {kind: addTags, tags: [a, b]}
"""


@pytest.mark.parametrize(
    ("pointer", "position"),
    [
        ("", (1, 1)),
        ("/kind", (2, 1)),
        ("/metadata/name", (4, 3)),
        ("/spec/instructions/0", (7, 7)),
        ("/spec/instructions/0/percentage", (8, 7)),
        ("/spec/instructions/1/tags/1", (9, 33)),
        ("/spec/instructions/0/group", (7, 7)),  # absent: the closest existing parent
        ("/spec/instructions/7", (6, 3)),
    ],
)
def test_locate_maps_a_pointer_to_line_and_column(pointer: str, position: tuple[int, int]) -> None:
    assert locate(DOC, pointer) == position


def test_locate_unescapes_pointer_tokens() -> None:
    data = b"payloads:\n  a/b: 1\n  c~d: 2\n"
    assert locate(data, pointer_of(["payloads", "a/b"])) == (2, 3)
    assert locate(data, pointer_of(["payloads", "c~d"])) == (3, 3)
    assert locate(b"\xff", "/a") is None


@pytest.mark.parametrize("levels", [1_500, 3_000])
def test_nesting_past_the_parser_s_own_limit_reads_as_ours_where_ours_is_crossed(levels: int) -> None:
    # libyaml stops at 1,000 levels on its own, scanning ahead of the events; the error is
    # still ours, at the level that first exceeds MAX_DEPTH, in block style as in flow style.
    flow = fails(b"[" * levels)
    message = f"nesting deeper than {MAX_DEPTH} levels: flatten the document"
    assert (flow.message, flow.line, flow.column) == (message, 1, MAX_DEPTH + 1)
    block = fails(b"- " * levels + b"x\n")  # a sequence in a sequence in ...
    assert (block.message, block.line, block.column) == (message, 1, 2 * MAX_DEPTH + 1)
