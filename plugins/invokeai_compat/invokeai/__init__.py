"""InvokeAI's import names on Invoke Host, so InvokeAI community node packs run unmodified.

This is not InvokeAI: it is the ``invokeai-compat`` distribution, which maps the public node API
(``invokeai.invocation_api``, 6.14) and the older import paths packs still use onto ``invoke_sdk``.
What needs InvokeAI's own model stack is importable but raises :class:`invokeai_compat.NotSupportedHere`
when used. See docs/invokeai-packs.md.
"""
