"""Names, versions and upload filenames, checked against packaging's own rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from pypid.domain.names import (
    BadName,
    check_upload_filename,
    is_normalized,
    normalize_package_name,
    parse_distribution_filename,
    parse_version,
    validate_project_path,
    validate_user_name,
    version_key,
)

name_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                     min_size=1, max_size=10)
separators = st.sampled_from(["-", "_", ".", "--", "._-"])
names = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    name_chars, st.lists(st.tuples(separators, name_chars), max_size=3),
)
versions = st.builds(
    lambda parts, post: ".".join(str(p) for p in parts) + post,
    st.lists(st.integers(0, 999), min_size=1, max_size=4),
    st.sampled_from(["", "a1", "b2", "rc1", ".post1", ".dev3"]),
)


def wheel_name(name: str) -> str:
    """The escaped name that goes into a wheel filename (binary distribution format spec)."""
    return re.sub(r"[-_.]+", "_", name)


@given(names)
def test_normalization_matches_packaging(name: str) -> None:
    """Our normalized name is PEP 503's, and it is a fixed point."""
    normalized = normalize_package_name(name)
    assert normalized == canonicalize_name(name)
    assert is_normalized(normalized)
    assert normalize_package_name(normalized) == normalized


@given(names, versions)
def test_wheel_filenames_round_trip(name: str, version: str) -> None:
    """A wheel filename built from a name and version parses back to them."""
    filename = f"{wheel_name(name)}-{version}-py3-none-any.whl"
    dist = check_upload_filename(filename, name, version)
    parsed_name, parsed_version, _, _ = parse_wheel_filename(filename)
    assert dist.name == parsed_name == canonicalize_name(name)
    assert dist.version == parsed_version == Version(version)
    assert dist.kind == "bdist_wheel"


@given(names, versions, st.sampled_from([".tar.gz", ".zip"]))
def test_sdist_filenames_round_trip(name: str, version: str, extension: str) -> None:
    """An sdist filename of a name and version is accepted for exactly that name/version."""
    filename = f"{name.replace('-', '_')}-{version}{extension}"
    dist = check_upload_filename(filename, name, version)
    assert dist.kind == "sdist" and dist.version == Version(version)


@given(names, versions, versions)
def test_other_versions_are_refused(name: str, version: str, other: str) -> None:
    """A file of one version is refused when the form says another."""
    filename = f"{wheel_name(name)}-{version}-py3-none-any.whl"
    if Version(version) == Version(other):
        check_upload_filename(filename, name, other)
    else:
        with pytest.raises(BadName, match="not a file of version"):
            check_upload_filename(filename, name, other)


@pytest.mark.parametrize(
    "filename",
    ["../evil-1.0.tar.gz", "dir/pkg-1.0.tar.gz", "dir\\pkg-1.0.tar.gz", "pkg-1.0.exe",
     "pkg-1.0.tar.bz2", "pkg.whl", "", "pkg-1.0-py3-none-any.whl\x00.tar.gz",
     "pkg-1.0\n.tar.gz", "x" * 300 + "-1.0.tar.gz", "pkg-notaversion-py3-none-any.whl"],
)
def test_bad_filenames_are_refused(filename: str) -> None:
    """Paths, control characters, odd extensions and unparsable names are refused."""
    with pytest.raises(BadName):
        parse_distribution_filename(filename)


def test_file_of_another_package_is_refused() -> None:
    """A filename naming another package than the form is refused."""
    with pytest.raises(BadName, match="not a file of package"):
        check_upload_filename("other-1.0.tar.gz", "mine", "1.0")


def test_equal_versions_share_a_key() -> None:
    """'1.0' and '1.0.0' are one release."""
    assert version_key(Version("1.0")) == version_key(Version("1.0.0"))
    assert version_key(Version("1.0")) != version_key(Version("1.0.1"))


@pytest.mark.parametrize("path", ["acme/tools", "a_b/c.d-e", "Group1/Proj"])
def test_valid_project_paths(path: str) -> None:
    """GitLab-style NAMESPACE/NAME paths are accepted."""
    assert "/".join(validate_project_path(path)) == path


# Every code point but surrogates, control characters included.
any_text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30)


@given(any_text)
def test_any_text_is_a_valid_name_or_a_bad_name(text: str) -> None:
    """Over all of Unicode, normalization either gives packaging's ASCII name or refuses
    with BadName: never another exception, never a name with a space or control character."""
    try:
        normalized = normalize_package_name(text)
    except BadName:
        return
    assert normalized.isascii() and normalized == normalized.strip()
    assert normalized == canonicalize_name(text, validate=True)


@given(any_text)
def test_any_text_is_a_valid_version_or_refused(text: str) -> None:
    """Versions are PEP 440 versions spelled without spaces, or refused with BadName."""
    try:
        version = parse_version(text)
    except BadName:
        return
    assert text == text.strip() and text.isascii()
    assert version == Version(text)


@given(any_text)
def test_any_text_is_a_user_name_or_refused(text: str) -> None:
    """User names and project paths are ASCII path parts, fully matched, or refused."""
    for check in (validate_user_name, lambda value: validate_project_path(f"a/{value}")):
        try:
            check(text)
        except BadName:
            continue
        assert text.isascii() and "\n" not in text and text == text.strip()


@pytest.mark.parametrize("text", ["eve\n", "eve ", "\u212aelvin", "e\x00ve", ""])
def test_user_names_with_newlines_or_non_ascii_are_refused(text: str) -> None:
    """`pypid user create $'eve\\n'` fails: `$` no longer matches before a newline."""
    with pytest.raises(BadName):
        validate_user_name(text)


@pytest.mark.parametrize("text", ["pkg\n", "\u212a", "pkg\u0301", "p\nkg", "pkg\r"])
def test_names_with_newlines_or_non_ascii_letters_are_refused(text: str) -> None:
    with pytest.raises(BadName):
        normalize_package_name(text)
