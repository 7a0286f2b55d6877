// peer_nanobind: the comparison module (peers/README.md) with nanobind, built FREE_THREADED.
//
// nanobind keeps its type registry per process and declares every module
// Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED, so this module is single-interpreter by design:
// what a second interpreter makes of it is what the smoke probe records. The cached objects are
// therefore process-wide, made under nanobind's free-threading mutex.

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace nb = nanobind;

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

// A process-wide object made once (the module is single-interpreter), never released: its
// interpreter outlives every caller.
class Once {
public:
    template <typename Make>
    nb::object get(Make make) {
        PyObject *obj = ptr_.load(std::memory_order_acquire);
        if (obj == nullptr) {
            nb::ft_lock_guard guard(mutex_);
            obj = ptr_.load(std::memory_order_relaxed);
            if (obj == nullptr) {
                obj = make().release().ptr();
                ptr_.store(obj, std::memory_order_release);
            }
        }
        return nb::borrow(obj);
    }

private:
    std::atomic<PyObject *> ptr_{nullptr};
    nb::ft_mutex mutex_;
};

Once interned_str;
Once cached_list;

}  // namespace

NB_MODULE(peer_nanobind, m) {
    m.doc() = "interpsafe peers: the comparison module with nanobind";

    nb::class_<Counter>(m, "Counter")
        .def(nb::init<>())
        .def("incr", &Counter::incr, "Add 1 and return the new count.")
        .def_prop_ro("value", &Counter::value, "The count.");

    m.def("identity", [](nb::object obj) { return obj; }, "identity(obj): return obj.");

    nb::exception<PeerError>(m, "Error", PyExc_Exception);
    m.def(
        "raise_error",
        [](const std::string &msg) { throw PeerError(msg); },
        "raise_error(msg): raise Error(msg).");

    m.def(
        "interned",
        [] {
            return interned_str.get([] {
                PyObject *s = PyUnicode_InternFromString("interpsafe");
                if (s == nullptr) {
                    throw nb::python_error();
                }
                return nb::steal(s);
            });
        },
        "The interned str 'interpsafe', the same object every call.");

    m.def(
        "cached",
        [] { return cached_list.get([] { return nb::list(); }); },
        "A list made on first use, the same object every call.");

    m.def("call", [](nb::object f, nb::object x) { return f(x); }, "call(f, x): return f(x).");
}
