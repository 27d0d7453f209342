"""Remote toolboxes: DigitalOcean droplets (python-digitalocean) and the SSH layer (asyncssh)."""
