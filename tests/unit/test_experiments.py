import pytest

from merchandiser.experiments import assign


def test_assignment_is_deterministic_and_follows_the_shares():
    variants = (("control", 0.5), ("treatment", 0.5))
    first = [assign(f"user-{i}", "exp", variants) for i in range(4000)]
    assert first == [assign(f"user-{i}", "exp", variants) for i in range(4000)]
    share = first.count("treatment") / len(first)
    assert 0.46 < share < 0.54


def test_experiments_are_independent():
    variants = (("a", 0.5), ("b", 0.5))
    one = [assign(f"u{i}", "one", variants) for i in range(2000)]
    two = [assign(f"u{i}", "two", variants) for i in range(2000)]
    agreement = sum(x == y for x, y in zip(one, two, strict=True)) / 2000
    assert 0.45 < agreement < 0.55


def test_an_experiment_without_variants_is_refused():
    with pytest.raises(ValueError, match="at least one variant"):
        assign("u", "exp", ())
