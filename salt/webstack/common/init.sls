# Applied to every minion first. Validation fails the whole run (failhard) before anything else.
include:
  - .validation
