"""Remote toolboxes: DigitalOcean droplets (python-digitalocean) and the SSH layer (asyncssh).

Every module that imports asyncssh lives in this package, so this file runs before
asyncssh is first imported, whatever the entry point (``tbx``, the gateway, the
background retrier ``python -m console.remote.retrier``, the benches).
"""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# asyncssh names cryptography's DSA classes in its type aliases, and cryptography warns on
# each such access: ten lines on stderr for every command that reaches the SSH layer. We
# never make DSA keys nor offer ``ssh-dss`` host keys (see ``ssh._HOST_KEY_ALGS``), so the
# warning is about code we do not run. Only this one message, raised from asyncssh's own
# modules, is silenced; any other deprecation (ours, or asyncssh's on another subject)
# still shows.
warnings.filterwarnings("ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning,
                        module=r"asyncssh(\.|$)")
