#include "common/shared_table.h"
namespace common {
SharedTable::Stick SharedTable::stick(std::string_view, uint32_t proposed, std::chrono::nanoseconds,
                                      uint32_t) {
    return Stick{proposed, 0, false};
}
}  // namespace common
