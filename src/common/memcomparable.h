// Memcomparable key encoding: values are encoded so that comparing the encodings as unsigned
// bytes (memcmp, then shorter-first) gives the same order as comparing the values. Keys in
// the storage engine are compared as bytes (DESIGN.md §2), so every key part that must sort
// (integers, strings, composite keys) goes through these functions. The formats are
// specified in docs/encoding.md.
//
// Every encoding is self-delimiting: a decoder knows where a part ends without outside
// information, and no encoding of one value is a proper prefix of the encoding of another
// value of the same kind. A composite key is therefore just the concatenation of its
// encoded parts, and composite keys compare like tuples (first part, then second, ...).
// The decoder must be told the kinds of the parts, in order; the encoding carries no types.
//
// Each kind has an ascending and a descending ("Desc") form; the descending form is the
// ascending bytes inverted, so it sorts in reverse. A key may mix the two per part.
//
// Append* functions append to a caller-owned string and cannot fail.
// Decode* functions read one part from the front of `*input` and advance it on success. On
// malformed or truncated input they return Corruption and leave `*input` and the output
// untouched. Decoders accept exactly the byte strings the encoders produce, so
// re-encoding a decoded value gives back the bytes consumed.
// All functions are thread-compatible: they touch only their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace micedb::memcomparable {

// Unsigned 64-bit integer: 8 bytes, big-endian.
void AppendUint64(std::string* dst, uint64_t value);
void AppendUint64Desc(std::string* dst, uint64_t value);
Status DecodeUint64(std::string_view* input, uint64_t* value);
Status DecodeUint64Desc(std::string_view* input, uint64_t* value);

// Signed 64-bit integer: sign bit flipped, then 8 bytes big-endian, so that negative values
// sort before positive ones.
void AppendInt64(std::string* dst, int64_t value);
void AppendInt64Desc(std::string* dst, int64_t value);
Status DecodeInt64(std::string_view* input, int64_t* value);
Status DecodeInt64Desc(std::string_view* input, int64_t* value);

// Double: 8 bytes ordered like the numeric value, -inf < finite < +inf < NaN. -0.0 is
// encoded as +0.0 and every NaN as one canonical NaN, so decoding returns +0.0 and that NaN.
void AppendDouble(std::string* dst, double value);
void AppendDoubleDesc(std::string* dst, double value);
Status DecodeDouble(std::string_view* input, double* value);
Status DecodeDoubleDesc(std::string_view* input, double* value);

// Byte string of any content, including zero bytes: each 0x00 becomes 0x00 0xFF, and the
// string ends with 0x00 0x01. Encodings sort like the strings (bytes unsigned, a prefix
// first). The encoding is at most 2 * size + 2 bytes.
void AppendBytes(std::string* dst, std::string_view value);
void AppendBytesDesc(std::string* dst, std::string_view value);
// `*value` is replaced with the decoded bytes.
Status DecodeBytes(std::string_view* input, std::string* value);
Status DecodeBytesDesc(std::string_view* input, std::string* value);

}  // namespace micedb::memcomparable
