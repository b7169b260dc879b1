"""The learned deterioration model: data, window features, training, the shipped artifact and
its honest evaluation against NEWS2. See docs/model.md."""
