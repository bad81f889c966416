"""Text-to-image generation through an image embedding (unCLIP, DALL·E 2).

    text --MiniLM/LiT text side--> text embedding --prior--> image embedding --decoder--> image

diffusion.py   noise schedule, DDIM sampler, classifier-free guidance, slerp
unet.py        the decoder: a small U-Net conditioned on the image embedding
prior.py       the priors: a diffusion prior (predicts the clean embedding) and a regression prior
unclip.py      loading the three parts and running the two stages
gallery.py     generated PNGs with their parameters in text chunks
jobs.py        the engine jobs behind the Generate panel
kandinsky.py   Kandinsky 2.2 through diffusers (optional extra)
cli.py         `python main.py generate`
"""
