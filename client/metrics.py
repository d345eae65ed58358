"""Read a Prometheus endpoint (the flchain app's or CometBFT's) into plain numbers."""

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, timeout: float = 2) -> dict[str, float]:
    """{sample name: value} of the unlabelled samples at url (http://host:port/metrics); {} if unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples if not s.labels}
