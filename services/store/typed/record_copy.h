// The copy a typed record delivers (message-types.md §1.1): FIRED for a
// timer, COMMITTED / DISCARDED for a half message. It keeps the message
// bytes (id, keys, tag, born time, flags, body) and the subject's target.
#pragma once

#include <cstdint>
#include <string>

#include "services/store/commitlog/record.h"

namespace apogee::store {

// A record of `kind` acting on `subject` (its commit offset becomes the
// copy's subject), written to `topic`/`queue`. With `with_message` the
// message bytes are kept; without, only the id (op records: DROPPED,
// ROLLED_BACK).
RecordInput CopyRecord(const RecordView& subject, RecordKind kind, std::string topic, int32_t queue,
                       bool with_message);

}  // namespace apogee::store
