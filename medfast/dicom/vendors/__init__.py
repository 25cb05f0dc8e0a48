"""Vendor quirks, one module per vendor: Siemens mosaic and CSA header
(:mod:`.siemens`), Philips private scaling (:mod:`.philips`)."""
