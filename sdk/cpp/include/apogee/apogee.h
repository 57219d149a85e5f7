// The Apogee C++ SDK: include this, link apogee::sdk.
#pragma once

#include "apogee/client_options.h"     // IWYU pragma: export
#include "apogee/filter_expression.h"  // IWYU pragma: export
#include "apogee/message.h"            // IWYU pragma: export
#include "apogee/producer.h"           // IWYU pragma: export
#include "apogee/pull_consumer.h"      // IWYU pragma: export
#include "apogee/push_consumer.h"      // IWYU pragma: export
#include "apogee/simple_consumer.h"    // IWYU pragma: export
