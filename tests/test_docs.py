"""The reference docs keep up with the code: every setting is documented."""

from pathlib import Path

from shared.core.settings import Settings

DOCS = Path(__file__).parents[1] / "docs"


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (DOCS / "configuration.md").read_text()
    names = [name.upper() for name in Settings.model_fields]
    missing = [name for name in names if f"`{name}`" not in reference]
    assert missing == [], f"add these to docs/configuration.md: {missing}"
