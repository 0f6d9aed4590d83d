// Documents of one segment found by their external id: an open-addressing hash table of the
// segment's rows, built once, then a batch of ids found with about one probe each (a catalog
// query, or a binary search over the memory-mapped id bytes, costs a hybrid search or a rerank
// several cache misses per id instead).
//
// A segment stores its external ids as bytes (row r's id = bytes[offsets[r], offsets[r + 1]))
// with offsets non-decreasing from 0 to the byte count, checked by the caller.
#pragma once

#include <cstdint>

namespace gingham {

// Slots for n_rows rows: a power of two at least twice n_rows (the table stays half empty).
int64_t id_table_slots(int64_t n_rows);

// slots (n_slots = id_table_slots(n_rows) entries): the table of every row, -1 = empty.
void build_id_table(const uint8_t* bytes, const int64_t* offsets, int64_t n_rows,
                    int64_t* slots, int64_t n_slots);

// rows[j] = the row whose id equals key j (keys stored the same way: key_offsets has n_keys + 1
// entries) and for which live[row] != 0 (live nullable: every row counts), else -1.
void find_rows_by_id(const uint8_t* bytes, const int64_t* offsets, const int64_t* slots,
                     int64_t n_slots, const uint8_t* live, const uint8_t* keys,
                     const int64_t* key_offsets, int64_t n_keys, int64_t* rows);

}  // namespace gingham
