import pytest
import torch

import dynamo_ext as de
from dynamo_ext.population.training import TrainConfig


@pytest.fixture(scope="session")
def digits_task():
    return de.load_task("digits")


@pytest.fixture(scope="session")
def tiny_population(digits_task):
    """One tanh RNN, GRU and LSTM on scikit-learn's digits, trained briefly (seconds)."""
    return de.train_population(digits_task, archs=("rnn", "gru", "lstm"), hidden_sizes=(12,), n_seeds=1,
                               config=TrainConfig(epochs=3), progress=False)


@pytest.fixture(scope="session")
def tiny_fit(tiny_population):
    return de.fit(tiny_population, steps=60, batch_size=32, state_size=16, max_sequences=200, progress=False)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)
