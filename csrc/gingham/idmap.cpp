#include "gingham/idmap.h"

#include <string_view>

namespace gingham {
namespace {

std::string_view id_of(const uint8_t* bytes, const int64_t* offsets, int64_t row) {
  return {reinterpret_cast<const char*>(bytes) + offsets[row],
          static_cast<size_t>(offsets[row + 1] - offsets[row])};
}

// FNV-1a, 64 bits: ids are short strings; any fixed hash with good low bits serves.
uint64_t hash_of(std::string_view id) {
  uint64_t h = 1469598103934665603ULL;
  for (const char c : id) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

int64_t id_table_slots(int64_t n_rows) {
  int64_t n = 1;
  while (n < 2 * n_rows) n *= 2;
  return n;
}

void build_id_table(const uint8_t* bytes, const int64_t* offsets, int64_t n_rows,
                    int64_t* slots, int64_t n_slots) {
  const uint64_t mask = static_cast<uint64_t>(n_slots - 1);
  for (int64_t i = 0; i < n_slots; ++i) slots[i] = -1;
  for (int64_t r = 0; r < n_rows; ++r) {
    uint64_t i = hash_of(id_of(bytes, offsets, r)) & mask;
    while (slots[i] >= 0) i = (i + 1) & mask;
    slots[i] = r;
  }
}

void find_rows_by_id(const uint8_t* bytes, const int64_t* offsets, const int64_t* slots,
                     int64_t n_slots, const uint8_t* live, const uint8_t* keys,
                     const int64_t* key_offsets, int64_t n_keys, int64_t* rows) {
  const uint64_t mask = static_cast<uint64_t>(n_slots - 1);
  for (int64_t j = 0; j < n_keys; ++j) {
    const std::string_view key = id_of(keys, key_offsets, j);
    rows[j] = -1;
    // a segment holds an id once, but a dead row beside a live one must not hide it
    for (uint64_t i = hash_of(key) & mask; slots[i] >= 0; i = (i + 1) & mask) {
      const int64_t r = slots[i];
      if ((live == nullptr || live[r] != 0) && id_of(bytes, offsets, r) == key) {
        rows[j] = r;
        break;
      }
    }
  }
}

}  // namespace gingham
