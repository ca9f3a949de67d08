"""The model catalog: the embedded model on or off, replacing the models in place."""

from __future__ import annotations

import pytest

from symphony.conductor.models import EMBEDDED_MODEL, ModelCatalog, ModelSpec

REMOTE = ModelSpec("remote", {"kind": "openai", "base_url": "http://a/v1", "model": "m"})


def test_the_embedded_model_is_the_default_when_on() -> None:
    catalog = ModelCatalog({"remote": REMOTE})
    assert catalog.embedded
    assert "" in catalog
    assert EMBEDDED_MODEL in catalog
    assert catalog.resolve("").id == EMBEDDED_MODEL
    assert catalog.resolve("").provider is None
    assert catalog.problem("") is None
    assert catalog.problem("remote") is None


def test_with_the_embedded_model_off_the_default_names_no_model() -> None:
    catalog = ModelCatalog({"remote": REMOTE}, embedded=False)
    assert not catalog.embedded
    assert "" not in catalog
    assert EMBEDDED_MODEL not in catalog
    assert [s.id for s in catalog] == ["remote"]
    assert catalog.resolve("remote") is REMOTE
    with pytest.raises(KeyError) as info:
        catalog.resolve("")
    message = info.value.args[0]
    assert message == (
        f"no model is chosen and the default, the embedded model {EMBEDDED_MODEL!r}, is turned "
        'off in the Settings ("Use the embedded model"); choose another model (known: remote)'
    )
    with pytest.raises(KeyError, match="the embedded model .* is turned off"):
        catalog.resolve(EMBEDDED_MODEL)
    assert catalog.problem("") == message


def test_with_no_model_at_all_the_message_says_none_is_known() -> None:
    catalog = ModelCatalog(embedded=False)
    assert list(catalog) == []
    assert catalog.problem("").endswith("(known: none)")  # type: ignore[union-attr]


def test_an_unknown_model_is_named_with_the_known_ones() -> None:
    catalog = ModelCatalog({"remote": REMOTE})
    assert catalog.problem("nope") == f"unknown model 'nope' (known: remote, {EMBEDDED_MODEL})"
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        catalog.resolve("nope")


def test_sync_replaces_the_models_in_place() -> None:
    catalog = ModelCatalog({"remote": REMOTE})
    same = catalog  # the conductor, its broker and the model tracker share one object
    renamed = ModelSpec("renamed", REMOTE.provider)
    catalog.sync(ModelCatalog({"renamed": renamed}, embedded=False))
    assert same is catalog
    assert sorted(s.id for s in catalog) == ["renamed"]
    assert "remote" not in catalog
    assert "" not in catalog
    assert not catalog.embedded
    catalog.sync(ModelCatalog())
    assert [s.id for s in catalog] == [EMBEDDED_MODEL]
    assert catalog.embedded


def test_sync_does_not_share_the_source_catalogs_models() -> None:
    source = ModelCatalog()
    catalog = ModelCatalog()
    catalog.sync(source)
    source.add(REMOTE)
    assert "remote" not in catalog
