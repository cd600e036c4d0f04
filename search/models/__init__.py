"""Models: Keras blocks, one builder per family (`vgg`, `resnet`, `cells`, paired with their schema in
`registry`), and what a built model costs (`costs`)."""
