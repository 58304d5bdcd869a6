"""Self-contained extras beside the library, as OpenMMLab repositories keep them."""
