"""The driving vertical: sim-to-real street-scene segmentation (CamVid 11 classes).

``sim`` renders labelled street scenes, ``data`` loads CamVid, Cityscapes, CARLA, GTA5 and SYNTHIA
layouts into one schema (``schema``), ``adapt`` trains decoders on cached encoder features with the
core adaptation methods, ``sim2real`` runs the whole experiment, ``segment`` loads the shipped
solutions and draws overlays. Builds on suite.core only.
"""
