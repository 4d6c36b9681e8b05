"""kairos-serve, the front end that serves a profile's model to remote robots: the command line
(cli.py), the Ray Serve deployment (ray_serve.py) and the batched model it runs (batched.py). The
transport it uses, and that the robot side's backends share, is kairos_ros/remote/."""


class StartError(ValueError):
    """A reason not to start kairos-serve, said in one line."""
