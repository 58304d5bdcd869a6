// The layout key of lists of tensors: what a host plan's pointer tables depend on.
#pragma once
#include <torch/extension.h>

// bytes, or None when some item is not a plain strided tensor with storage whose memory
// holds its values (no conjugate or negative bit).
py::object layout_key(const py::args& lists);
