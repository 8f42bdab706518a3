// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TensorBoard's TFRecord
// framing (io/event_file.h). Debian 12 packages no C or C++ library for it (zlib's crc32 is
// another polynomial; only Python has python3-crc32c), so it is computed here, a byte at a
// time from a table: event files are small, and speed does not matter.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dgqa {

// The CRC-32C of size bytes; crc32c("123456789", 9) == 0xE3069283.
uint32_t crc32c(const void* data, size_t size);

// TFRecord's masked form of a CRC-32C, so that a CRC of bytes holding CRCs is not trivial:
// rotated right by 15 bits, plus 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t size);

}  // namespace dgqa
