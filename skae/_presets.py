"""Named sets of MLPAutoencoder parameters, shared by the command line and the docs."""

#: The textbook chapter's model: 784-256-128-100, sigmoid after every layer (code
#: and output included), Adam at 0.01, batch 256, 10 epochs, 0.5 * MSE.
CHAPTER_PARAMS = {
    "n_components": 100,
    "hidden_layer_sizes": (256, 128),
    "activation": "logistic",
    "latent_activation": "logistic",
    "output_activation": "logistic",
    "loss": "squared_error",
    "solver": "adam",
    "learning_rate_init": 0.01,
    "learning_rate": "constant",
    "early_stopping": False,
    "batch_size": 256,
    "max_iter": 10,
    "shuffle": True,
}

PRESETS = {"default": {}, "chapter": CHAPTER_PARAMS}
