"""Values written the way the Docker provider reads them back (pure; no Pulumi).

kreuzwerker/terraform-provider-docker (which pulumi-docker 4.x bundles) stores what its Read
finds on the engine; an input written any other way differs from the state on every `up`,
and for ForceNew inputs (`cpus`) that is a replacement every time.
"""

from __future__ import annotations

from fractions import Fraction

def go_duration(seconds: int) -> str:
    """`seconds` as Go's time.Duration.String() prints it ("5s", "1m0s", "1h0m0s"): what the
    Docker provider reads back for healthcheck durations (resource_docker_container_funcs.go,
    `Healthcheck.Interval.String()`), so a plan never differs from the state by format."""
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def cpus_string(cpus: float) -> str:
    """`cpus` as the Docker provider reads it back: nanoInt64ToDecimalString(NanoCPUs)
    (kreuzwerker/terraform-provider-docker internal/provider/helpers.go): the value with 9
    decimals, and if that string holds exactly nine '0's one decimal ("1.0", "2.0", "0.5"),
    else trailing zeros trimmed ("1.25", and "10." for ten). `cpus` is ForceNew: sending
    anything else ("1") replaces the container on every `up`."""
    nano = round(cpus * 1_000_000_000)
    if nano <= 0:
        raise ValueError("cpus must be positive")
    nine = _rat_float_string(nano, 9)
    if nine.count("0") == 9:
        return _rat_float_string(nano, 1)
    return nine.rstrip("0")


def _rat_float_string(nano: int, digits: int) -> str:
    # Go's big.Rat.FloatString(digits) of nano/1e9: rounded half away from zero (positive here).
    scaled, rest = divmod(nano * 10**digits, 1_000_000_000)
    if rest * 2 >= 1_000_000_000:
        scaled += 1
    whole, frac = divmod(scaled, 10**digits)
    return f"{whole}.{frac:0{digits}d}"


def cpus_round_trips(cpus: float) -> bool:
    """Whether the provider's read-back of `cpus` parses (docker opts.ParseCPUs) to the same
    NanoCPUs: nanoInt64ToDecimalString turns e.g. 0.05 into "0.1" and 0.001 into "0.0"."""
    nano = round(cpus * 1_000_000_000)
    if nano <= 0:
        return False
    return Fraction(cpus_string(cpus).rstrip(".")) * 1_000_000_000 == nano
