"""Training: crop caches and packs (:mod:`.cache`), recipes (:mod:`.presets`), the wild
augmentation (:mod:`.augment`), sampling, the ordinal loss and EMA (:mod:`.sampling`), the training
loop (:mod:`.train`), data-parallel training under torchrun (:mod:`.distributed`) and the metrics
training shares with evaluation (:mod:`.scoring`). The runtime never imports this package.
"""
