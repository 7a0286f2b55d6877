// peer_pybind11: the comparison module (peers/README.md) written the way pybind11 3.x documents
// for own-GIL subinterpreters and free-threading: the module declares both
// (`py::multiple_interpreters::per_interpreter_gil()`, `py::mod_gil_not_used()`), and every
// Python object it keeps sits in `py::gil_safe_call_once_and_store`, which with subinterpreter
// support stores one value per interpreter (in that interpreter's state dict).

#include <pybind11/gil_safe_call_once.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace {

// The C++ exception that `raise_error` throws; registered below as the module's `Error`.
struct PeerError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The counter word is atomic: on a free-threaded build threads may call incr on one Counter.
struct Counter {
    std::atomic<long long> count{0};

    long long incr() { return count.fetch_add(1, std::memory_order_relaxed) + 1; }
    long long value() const { return count.load(std::memory_order_relaxed); }
};

}  // namespace

PYBIND11_MODULE(peer_pybind11,
                m,
                py::mod_gil_not_used(),
                py::multiple_interpreters::per_interpreter_gil()) {
    m.doc() = "interpsafe peers: the comparison module with pybind11";

    py::class_<Counter>(m, "Counter")
        .def(py::init<>())
        .def("incr", &Counter::incr, "Add 1 and return the new count.")
        .def_property_readonly("value", &Counter::value, "The count.");

    m.def("identity", [](py::object obj) { return obj; }, "identity(obj): return obj.");

    py::register_exception<PeerError>(m, "Error", PyExc_Exception);
    m.def(
        "raise_error",
        [](const std::string &msg) { throw PeerError(msg); },
        "raise_error(msg): raise Error(msg).");

    m.def(
        "interned",
        []() -> py::object {
            PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> storage;
            return storage
                .call_once_and_store_result([] {
                    PyObject *s = PyUnicode_InternFromString("interpsafe");
                    if (s == nullptr) {
                        throw py::error_already_set();
                    }
                    return py::reinterpret_steal<py::object>(s);
                })
                .get_stored();
        },
        "The interned str 'interpsafe', the same object every call.");

    m.def(
        "cached",
        []() -> py::object {
            PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> storage;
            return storage.call_once_and_store_result([] { return py::list(); }).get_stored();
        },
        "A list made on first use, the same object every call.");

    m.def("call", [](py::object f, py::object x) { return f(x); }, "call(f, x): return f(x).");
}
