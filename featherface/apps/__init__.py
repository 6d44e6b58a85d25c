"""Applications on the detector library, torch-free like it: batch runs of the detect, anonymise
and crop jobs (:mod:`.batch`, :mod:`.jobs`), video I/O (:mod:`.video`), Ray Data runs
(:mod:`.raydata`), the in-browser page's server (:mod:`.webapp`) and the HTTP service (:mod:`.serve`)."""
