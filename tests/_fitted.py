"""What several test files share: a fingerprint of everything a model has fitted."""

import hashlib


def fingerprint(ae):
    """Return (a hash of the weights, the repr of every other fitted attribute)."""
    digest = hashlib.sha256()
    for module in (getattr(ae, "encoder_", None), getattr(ae, "decoder_", None)):
        if module is None:
            continue
        for name, tensor in module.state_dict().items():
            digest.update(name.encode() + tensor.cpu().numpy().tobytes())
    attributes = {
        name: repr(value)
        for name, value in vars(ae).items()
        if name.endswith("_") and name not in ("encoder_", "decoder_")
    }
    return digest.hexdigest(), attributes
