"""Vendor quirks, one module per vendor: Siemens mosaic, CSA and XA classic
series (:mod:`.siemens`), Philips private scaling, diffusion and volume
order (:mod:`.philips`), GE field maps, reverse polarity and diffusion
(:mod:`.ge`), United Imaging grids (:mod:`.uih`)."""
