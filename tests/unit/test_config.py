"""Options and config merging: defaults < TOML < command line, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.python import usage

from pypid.config import Config, ConfigError, load_config
from pypid.tap import Options


def parse(*argv: str) -> Config:
    options = Options()
    options.parseOptions(list(argv))
    assert options.config is not None
    return options.config


def test_defaults_match_the_spec() -> None:
    """With no options the daemon uses ./pypid-data, 127.0.0.1:8080 and a 50 MiB limit."""
    config = parse()
    assert config.data_dir == "./pypid-data"
    assert config.listen == ("tcp:8080:interface=127.0.0.1",)
    assert config.max_upload_size == 52_428_800
    assert config.public_url is None


def test_listen_is_repeatable() -> None:
    """Every --listen adds an endpoint, replacing the default."""
    config = parse("--listen", "tcp:1", "--listen", "unix:/tmp/x.sock")
    assert config.listen == ("tcp:1", "unix:/tmp/x.sock")


def test_toml_settings_apply_and_command_line_wins(tmp_path: Path) -> None:
    """Settings from the TOML file apply; options given on the command line override them."""
    toml = tmp_path / "pypid.toml"
    toml.write_text('data-dir = "/srv/pypid"\nmax-upload-size = 1000\n'
                    'listen = ["tcp:9000", "tcp:9001"]\npublic-url = "https://x.org/pypi/"\n')
    config = parse("--config", str(toml), "--max-upload-size", "2000")
    assert config.data_dir == "/srv/pypid"
    assert config.max_upload_size == 2000
    assert config.listen == ("tcp:9000", "tcp:9001")
    assert config.public_url == "https://x.org/pypi"


def test_pypid_table_is_accepted(tmp_path: Path) -> None:
    """Settings may also sit in a [pypid] table."""
    toml = tmp_path / "pypid.toml"
    toml.write_text('[pypid]\nmax-upload-size = 5\n')
    assert load_config(str(toml), {}).max_upload_size == 5


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('unknown-key = 1\n', "unknown-key"),
        ('max-upload-size = "lots"\n', "max-upload-size"),
        ('max-upload-size = -1\n', "max-upload-size"),
        ('listen = 5\n', "listen"),
        ('public-url = "ftp://x"\n', "public-url"),
        ('data-dir = ""\n', "data-dir"),
        ('this is not toml', "not valid TOML"),
    ],
)
def test_bad_toml_is_one_clear_line_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    """An unknown key or a bad value stops the start with a message naming it."""
    toml = tmp_path / "pypid.toml"
    toml.write_text(text)
    with pytest.raises(usage.UsageError) as error:
        parse("--config", str(toml))
    message = str(error.value)
    assert named in message
    assert "\n" not in message


def test_bad_command_line_value_is_refused() -> None:
    """A bad value on the command line is a usage error naming the option."""
    with pytest.raises(usage.UsageError, match="max-upload-size"):
        parse("--max-upload-size", "ten")


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    """A config path that does not exist is a clear error."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "missing.toml"), {})


def test_example_config_is_valid() -> None:
    """The shipped conf/pypid.example.toml loads."""
    example = Path(__file__).parents[2] / "conf" / "pypid.example.toml"
    config = load_config(str(example), {})
    assert config.max_upload_size > 0


def test_metrics_settings(tmp_path: Path) -> None:
    """--metrics-allow takes networks (TOML metrics-allow), --no-metrics turns counting off;
    a bad network is refused naming the setting."""
    assert Config().metrics_allow == ("127.0.0.0/8", "::1/128") and Config().metrics
    path = tmp_path / "pypid.toml"
    path.write_text('metrics-allow = ["10.0.0.0/8"]\nmetrics = false\n')
    config = load_config(str(path), {})
    assert config.metrics_allow == ("10.0.0.0/8",) and not config.metrics
    with pytest.raises(ConfigError, match="metrics-allow"):
        load_config(None, {"metrics-allow": ["not-a-network"]})
    options = Options()
    options.parseOptions(["--metrics-allow", "10.0.0.0/8", "--metrics-allow", "::1",
                          "--no-metrics"])
    assert options.config is not None
    assert options.config.metrics_allow == ("10.0.0.0/8", "::1") and not options.config.metrics


def test_accel_redirect_prefix_is_a_location_path() -> None:
    """--accel-redirect takes an nginx location path; anything else is refused by name."""
    assert load_config(None, {"accel-redirect": "/_pypid_blobs/"}).accel_redirect == \
        "/_pypid_blobs/"
    for bad in ("_pypid_blobs/", "/blobs", "/a//b/", "/../x/", "/a b/", "/a?b/"):
        with pytest.raises(ConfigError, match="accel-redirect"):
            load_config(None, {"accel-redirect": bad})


def test_upstream_settings() -> None:
    """The instance's upstream: URL (off: none), allow-list (repeatable), cooldown, TTL,
    timeout, size limit, retention; each bad value refused naming its option."""
    config = parse("--upstream", "https://pypi.org/simple/", "--upstream-allow", "Req*",
                   "--upstream-allow", "numpy", "--upstream-min-age", "3",
                   "--upstream-ttl", "0", "--upstream-timeout", "5",
                   "--upstream-max-file-size", "1000", "--upstream-retention-days", "0")
    assert (config.upstream, config.upstream_allow, config.upstream_min_age,
            config.upstream_ttl, config.upstream_timeout, config.upstream_max_file_size,
            config.upstream_retention_days) == (
        "https://pypi.org/simple", ("req*", "numpy"), 3.0, 0, 5.0, 1000, 0.0)
    assert parse("--upstream", "off").upstream is None
    assert Config().upstream is None
    for option, value in (("--upstream", "file:///etc"), ("--upstream", "https://h/?q"),
                          ("--upstream-allow", "a b"), ("--upstream-min-age", "-2"),
                          ("--upstream-ttl", "x"), ("--upstream-timeout", "0"),
                          ("--upstream-max-file-size", "big"),
                          ("--upstream-retention-days", "-1")):
        with pytest.raises(usage.UsageError, match=option.lstrip("-")):
            parse(option, value)
