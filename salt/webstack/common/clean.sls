# Nothing to remove: common only validates. Present so every role folder has init + clean.
webstack-common-clean-test-nop:
  test.nop: []
