// IdLookup: one segment's rows found by external id (csrc/gingham/idmap.h).
#include <string>
#include <vector>

#include "checks.h"
#include "gingham/idmap.h"

namespace gingham::bind {
namespace {

// id_bytes uint8 (B,), id_offsets int64 (n_rows + 1,) from 0 to B, checked and hashed once.
struct IdLookup {
  IdLookup(const py::handle& id_bytes, const py::handle& id_offsets)
      : bytes(typed_array<uint8_t>(id_bytes, "id_bytes", 1, "uint8")),
        offsets(typed_array<int64_t>(id_offsets, "id_offsets", 1, "int64")) {
    check_offsets(offsets, bytes.shape(0), "id_offsets");
    n_rows = offsets.shape(0) - 1;
    slots.resize(static_cast<size_t>(id_table_slots(n_rows)));
    py::gil_scoped_release release;
    build_id_table(bytes.data(), offsets.data(), n_rows, slots.data(),
                   static_cast<int64_t>(slots.size()));
  }

  // The row of each id that is live (live: uint8 (n_rows,) or None for every row), else -1.
  py::array_t<int64_t> find(const std::vector<std::string>& ids, const py::object& live) const {
    const uint8_t* live_rows = nullptr;
    py::array_t<uint8_t> live_array;
    if (!live.is_none()) {
      live_array = typed_array<uint8_t>(live, "live", 1, "uint8");
      require(live_array.shape(0) == n_rows, "live must hold n_rows = " +
                                                 std::to_string(n_rows) + " values; got " +
                                                 shape_of(live_array));
      live_rows = live_array.data();
    }
    std::vector<uint8_t> keys;
    std::vector<int64_t> key_offsets{0};
    for (const std::string& id : ids) {
      keys.insert(keys.end(), id.begin(), id.end());
      key_offsets.push_back(static_cast<int64_t>(keys.size()));
    }
    py::array_t<int64_t> rows(static_cast<py::ssize_t>(ids.size()));
    py::gil_scoped_release release;
    find_rows_by_id(bytes.data(), offsets.data(), slots.data(), static_cast<int64_t>(slots.size()),
                    live_rows, keys.data(), key_offsets.data(), static_cast<int64_t>(ids.size()),
                    rows.mutable_data());
    return rows;
  }

  py::array_t<uint8_t> bytes;
  py::array_t<int64_t> offsets;
  std::vector<int64_t> slots;  // the hash table (idmap.h)
  int64_t n_rows = 0;
};

}  // namespace

void register_idmap(py::module_& m) {
  py::class_<IdLookup>(m, "IdLookup",
                       "A segment's rows by external id: IdLookup(id_bytes uint8 (B,), "
                       "id_offsets int64 (n_rows + 1,)), row r's id = the UTF-8 bytes "
                       "id_bytes[id_offsets[r]:id_offsets[r + 1]]; hashed once.")
      .def(py::init<const py::handle&, const py::handle&>(), py::arg("id_bytes"),
           py::arg("id_offsets"))
      .def_readonly("n_rows", &IdLookup::n_rows)
      .def("find", &IdLookup::find, py::arg("ids"), py::arg("live") = py::none(),
           "Row int64 (len(ids),) of each id whose row is live (live: uint8 (n_rows,), 1 = "
           "live, or None: every row), -1 where there is none.");
}

}  // namespace gingham::bind
