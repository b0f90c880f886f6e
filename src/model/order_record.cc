#include "model/order_record.h"

namespace ordertrace::model {

const MessageHop* OrderRecord::LastMessage() const {
  const MessageHop* last = nullptr;
  for (const MessageHop& m : messages) {
    if (last == nullptr || m.LastActivity() > last->LastActivity() ||
        (m.LastActivity() == last->LastActivity() && m.message_id > last->message_id)) {
      last = &m;
    }
  }
  return last;
}

}  // namespace ordertrace::model
