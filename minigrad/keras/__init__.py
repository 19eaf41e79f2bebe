"""A Keras-style front end: Sequential models with compile, fit, evaluate and predict.

Built only on minigrad.nn and minigrad.optim, for code written against Keras::

    from minigrad.keras import Sequential
    from minigrad.keras.layers import SimpleRNN, Dense

    model = Sequential()
    model.add(SimpleRNN(5, activation="tanh", input_shape=(look_back, n_features)))
    model.add(Dense(1, activation="linear"))
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(X, y, epochs=2, batch_size=32, validation_split=0.1)
"""

from minigrad.keras import layers, losses, metrics, optimizers
from minigrad.keras.layers import GRU, LSTM, Dense, Input, Layer, SimpleRNN
from minigrad.keras.models import History, Sequential

__all__ = [
    "GRU",
    "LSTM",
    "Dense",
    "History",
    "Input",
    "Layer",
    "Sequential",
    "SimpleRNN",
    "layers",
    "losses",
    "metrics",
    "optimizers",
]
