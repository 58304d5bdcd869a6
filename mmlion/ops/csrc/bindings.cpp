// The Python module mmlion.ops._C: what each source file exports.
#include <torch/extension.h>

#include "layout_key.h"
#include "lion_cpu.h"
#include "step_plan.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mmlion's fused Lion kernels";
  m.def("fused_lion_", &fused_lion_,
        "Fused in-place Lion step over lists of CPU tensors; false if some tensor is not "
        "on the CPU",
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("decay"), py::arg("maximize"),
        py::arg("cautious"));
  m.def("all_finite", &all_finite,
        "True if no element of the CPU tensors is Inf or NaN; None if some tensor is not "
        "on the CPU",
        py::arg("tensors"));
  m.def("layout_key", &layout_key,
        "The layout key of lists of tensors (data pointers, dtypes, devices, sizes, "
        "strides) as bytes; None if some item is not a plain strided tensor");
  py::class_<PlanCheck>(m, "PlanCheck",
                        "A StepPlan's groups, parameters, hyperparameters (as values) and "
                        "momenta, and each step's check against them")
      .def(py::init<const py::list&, const py::dict&, const py::tuple&, const py::tuple&,
                    std::vector<int64_t>>(),
           py::arg("groups"), py::arg("state"), py::arg("fixed_keys"),
           py::arg("scheduled_keys"), py::arg("leaders"))
      .def("gradients", &PlanCheck::gradients,
           "Every parameter's gradient (None where it has none) when the plan holds, "
           "else None",
           py::arg("groups"), py::arg("state"));
}
