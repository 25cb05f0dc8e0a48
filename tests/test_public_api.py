"""The public API's contract: what a user imports exists, is documented in
numpydoc form, and the scipy drop-ins take scipy's arguments first, with
scipy's defaults."""
import importlib
import inspect

import pytest
import scipy.ndimage

import medfast

PUBLIC_MODULES = ["medfast", "medfast.ndimage", "medfast.image", "medfast.orientation",
                  "medfast.resample", "medfast.io", "medfast.dicom"]
DROP_INS = [name for name in ("affine_transform", "map_coordinates", "zoom", "shift",
                              "spline_filter", "spline_filter1d")
            if hasattr(medfast.ndimage, name)]


def _public(module_name):
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} declares no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"
        yield name, getattr(module, name)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_callable_has_a_numpydoc_docstring(module_name):
    for name, obj in _public(module_name):
        if inspect.ismodule(obj) or not callable(obj):
            continue
        doc = inspect.getdoc(obj)
        assert doc, f"{module_name}.{name} has no docstring"
        if inspect.isfunction(obj):
            takes = [p for p in inspect.signature(obj).parameters.values()
                     if p.kind is not p.VAR_KEYWORD or p.name != "kwargs"]
            if takes:
                assert "Parameters\n----------" in doc, \
                    f"{module_name}.{name}: no numpydoc Parameters section"


def test_top_level_names_are_the_documented_entry_points():
    # What the README's examples use, reachable from `import medfast`.
    for name in ("Image", "load", "save", "resample", "resample_to", "reorient",
                 "as_canonical", "load_dicom", "scan_dicom", "convert", "ndimage"):
        assert name in medfast.__all__, name


@pytest.mark.parametrize("name", DROP_INS)
def test_drop_ins_take_scipys_arguments_first_with_its_defaults(name):
    ours = list(inspect.signature(getattr(medfast.ndimage, name)).parameters.values())
    theirs = list(inspect.signature(getattr(scipy.ndimage, name)).parameters.values())
    assert [(p.name, p.default) for p in ours[:len(theirs)]] == \
        [(p.name, p.default) for p in theirs]
    # Whatever medfast adds comes after, with a default: scipy calls still work.
    assert all(p.default is not p.empty for p in ours[len(theirs):])
