"""kairos-make-urdf: the committed URDFs are exactly what the tool regenerates from the installed
MJCF models; they parse with pinocchio with the expected joints and limits; and their forward
kinematics equals MuJoCo's for random configurations (which checks every origin, axis, anchor and
reference position of the conversion). A small MJCF exercises what the three robots do not have
(several joints on one body, off-centre anchors, `ref`, equality couplings, free objects)."""
import os
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pinocchio as pin
import pytest

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.tools import mjcf_to_urdf as tool
from kairos_ros.tools.urdf_build import Options, mjcf_to_urdf, sanitize

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROBOTS = sorted(tool.ROBOTS)


def committed(name):
    return os.path.join(REPO, "urdf_adapters", name, "robot.urdf")


def joint_names(m):
    names = ((mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j), j) for j in range(m.njnt))
    return {sanitize(n): j for n, j in names if n}


def check_fk(m, urdf_path, root, links, trials=4, seed=0, tol=1e-6):
    """Pinocchio's placement of each named URDF link (relative to the root) equals MuJoCo's body or
    site pose for random joint values; returns the number of frames compared."""
    model = pin.buildModelFromUrdf(urdf_path)  # mimic joints load as ordinary joints: set them freely
    data = model.createData()
    d = mujoco.MjData(m)
    by_name = joint_names(m)
    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(trials):
        q = pin.neutral(model)
        for jid in range(1, model.njoints):
            j = by_name[model.names[jid]]
            lo, hi = m.jnt_range[j] if m.jnt_limited[j] else (-3.0, 3.0)
            value = rng.uniform(lo, hi)
            d.qpos[m.jnt_qposadr[j]] = value
            if model.nqs[jid] == 2:  # continuous joint: (cos, sin)
                q[model.idx_qs[jid]:model.idx_qs[jid] + 2] = np.cos(value), np.sin(value)
            else:
                q[model.idx_qs[jid]] = value
        mujoco.mj_kinematics(m, d)
        pin.framesForwardKinematics(model, data, q)
        r0, p0 = d.xmat[root].reshape(3, 3), d.xpos[root]
        for link, (kind, idx) in links.items():
            pos, mat = (d.xpos[idx], d.xmat[idx]) if kind == "body" else (d.site_xpos[idx], d.site_xmat[idx])
            placement = data.oMf[model.getFrameId(link)]
            np.testing.assert_allclose(placement.translation, r0.T @ (pos - p0), atol=tol, err_msg=link)
            np.testing.assert_allclose(placement.rotation, r0.T @ mat.reshape(3, 3), atol=tol, err_msg=link)
            compared += 1
    return compared


def robot_links(m, sites, urdf_path):
    """MuJoCo bodies and sites that have a link of their (sanitised) name in the URDF."""
    names = {el.get("name") for el in ET.parse(urdf_path).getroot().findall("link")}
    out = {}
    for b in range(1, m.nbody):
        n = sanitize(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b) or "")
        if n in names:
            out[n] = ("body", b)
    for s in sites:
        out[sanitize(s)] = ("site", mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, s))
    return out


@pytest.mark.parametrize("name", ROBOTS)
def test_committed_urdf_is_regenerated_exactly(name):
    with open(committed(name)) as f:
        assert tool.generate(tool.ROBOTS[name]) == f.read(), "run urdf_adapters/regenerate.sh"


def test_check_mode_reports_out_of_date_files(tmp_path, capsys):
    assert tool.main(["aloha", "--out-dir", str(tmp_path)]) == 0
    assert tool.main(["aloha", "--out-dir", str(tmp_path), "--check"]) == 0
    path = tmp_path / "aloha" / "robot.urdf"
    path.write_text(path.read_text().replace('velocity="1"', 'velocity="2"'))
    assert tool.main(["aloha", "--out-dir", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(["octopus"])


@pytest.mark.parametrize("name", ROBOTS)
def test_urdf_parses_with_pinocchio_with_the_mjcf_joints_and_limits(name):
    robot = tool.ROBOTS[name]
    m = mujoco.MjModel.from_xml_path(robot.mjcf_path())
    model = pin.buildModelFromUrdf(committed(name))
    spec = load_embodiment(name)
    expected = set(spec.joint_names) | set(spec.ignore_joints)
    assert set(model.names[1:]) == expected and model.nq == len(expected)
    by_name = joint_names(m)
    for jid in range(1, model.njoints):
        j = by_name[model.names[jid]]
        k = model.idx_qs[jid]
        assert model.lowerPositionLimit[k] == pytest.approx(m.jnt_range[j, 0], abs=1e-9)
        assert model.upperPositionLimit[k] == pytest.approx(m.jnt_range[j, 1], abs=1e-9)
        _effort, velocity = robot.joint_limits(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j))
        assert model.velocityLimit[model.idx_vs[jid]] == pytest.approx(velocity, rel=1e-5)
        assert model.effortLimit[model.idx_vs[jid]] > 0
    links = {f.name for f in model.frames}
    assert spec.base_link in links and set(spec.end_effectors) <= links


@pytest.mark.parametrize("name", ROBOTS)
def test_forward_kinematics_equals_mujoco(name):
    robot = tool.ROBOTS[name]
    m = mujoco.MjModel.from_xml_path(robot.mjcf_path())
    root = 0 if robot.root == "world" else mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, robot.root)
    links = robot_links(m, robot.sites, committed(name))
    assert check_fk(m, committed(name), root, links) >= 4 * 10


def test_shadow_hand_couplings_become_mimic_joints():
    root = ET.parse(committed("shadow_hand")).getroot()
    mimic = {j.get("name"): j.find("mimic").attrib for j in root.findall("joint") if j.find("mimic") is not None}
    assert sorted(mimic) == ["robot0_FFJ0", "robot0_LFJ0", "robot0_MFJ0", "robot0_RFJ0"]
    # tendon T_FFJ1c keeps 0.00705 FFJ0 - 0.00805 FFJ1 at 0: FFJ0 = 1.1418 FFJ1, FFJ1 being actuated
    assert mimic["robot0_FFJ0"] == {"joint": "robot0_FFJ1", "multiplier": "1.141844", "offset": "0"}


def test_adroit_arm_several_joints_on_one_body(tmp_path):
    """Adroit's forearm carries 3 slides and 3 hinges (dummy links); the object's joints are not robot."""
    assets = os.path.dirname(os.path.dirname(tool.ROBOTS["shadow_hand"].mjcf_path()))
    path = os.path.join(assets, "adroit_hand", "adroit_relocate.xml")
    m = mujoco.MjModel.from_xml_path(path)
    out = tmp_path / "adroit.urdf"
    assert tool.main(["--mjcf", path, "--subtree", "forearm", "--velocity", "1", "--effort", "10",
                      "-o", str(out)]) == 0
    text = out.read_text()
    assert '<link name="ARTx_link"/>' in text and "OBJTx" not in text
    assert check_fk(m, str(out), 0, robot_links(m, (), str(out)), trials=3) > 3 * 20


TOY = """
<mujoco>
  <worldbody>
    <body name="base" pos="0.1 0.2 0.3" euler="0.1 0.2 0.3">
      <geom type="box" size="0.1 0.1 0.05"/>
      <body name="arm" pos="0 0 0.1" quat="0.9 0.1 0.3 0.2">
        <joint name="j/slide" type="slide" axis="1 1 0" range="-0.1 0.2" ref="0.05"/>
        <joint name="j:hinge_a" type="hinge" axis="0 0.6 0.8" pos="0.05 -0.02 0.1" range="-1 1" ref="0.3"/>
        <joint name="j_hinge_b" type="hinge" axis="1 0 0" pos="0 0.03 0" range="-2 2"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.3" size="0.02"/>
        <geom type="ellipsoid" size="0.03 0.02 0.01" pos="0 0 0.3" contype="0" conaffinity="0"/>
        <body name="tip" pos="0 0 0.3">
          <joint name="spin" type="hinge" axis="0 0 1"/>
          <joint name="follow" type="hinge" axis="0 1 0" range="-1 1"/>
          <geom type="sphere" size="0.01"/>
          <site name="tool" pos="0 0 0.05" euler="0 1.2 0"/>
        </body>
      </body>
    </body>
    <body name="object" pos="1 0 0"><freejoint/><geom type="box" size="0.02 0.02 0.02"/></body>
  </worldbody>
  <equality><joint joint1="follow" joint2="j_hinge_b" polycoef="0.1 0.5 0 0 0"/></equality>
  <actuator><position joint="j_hinge_b" forcerange="-3 3"/></actuator>
</mujoco>
"""


def build_toy(tmp_path, xml=TOY, **kw):
    path = tmp_path / "toy.xml"
    path.write_text(xml)
    m = mujoco.MjModel.from_xml_string(xml)
    opts = Options(root="world", root_link="base_link", sites=("tool",), limits=lambda _n: (2.0, 1.5), **kw)
    return m, mjcf_to_urdf(m, opts)


def test_toy_mjcf_features(tmp_path):
    m, text = build_toy(tmp_path)
    urdf = tmp_path / "toy.urdf"
    urdf.write_text(text)
    root = ET.fromstring(text)
    joints = {j.get("name"): j for j in root.findall("joint")}
    assert joints["j_slide"].get("type") == "prismatic" and joints["spin"].get("type") == "continuous"
    assert joints["j_hinge_a"].find("parent").get("link") == "j_slide_link"  # dummy links chain the joints
    assert joints["arm_anchor"].get("type") == "fixed"  # the last hinge's anchor is off the body origin
    assert joints["follow"].find("mimic").attrib == {"joint": "j_hinge_b", "multiplier": "0.5", "offset": "0.1"}
    assert "object" not in {link.get("name") for link in root.findall("link")}  # free body skipped
    geometry = [g[0].tag for g in root.iter("geometry")]
    assert geometry.count("cylinder") == 2 and "box" in geometry  # capsule visual + collision; ellipsoid box
    cyl = root.find(".//link[@name='arm']/collision/geometry/cylinder")
    assert cyl.attrib == {"radius": "0.02", "length": "0.34"}  # the capsule's full length, caps included
    links = {"base": ("body", 1), "arm": ("body", 2), "tip": ("body", 3),
             "tool": ("site", mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "tool"))}
    assert check_fk(m, str(urdf), 0, links, trials=6) == 24
    assert mjcf_to_urdf(m, Options(root="world", root_link="base_link", sites=("tool",),
                                   limits=lambda _n: (2.0, 1.5))) == text  # deterministic


@pytest.mark.parametrize("edit,msg", [
    (lambda x: x.replace('<site name="tool"', '<body name="knob"><joint name="knob" type="ball"/>'
                                              '<geom type="sphere" size="0.01"/></body><site name="tool"'),
     r"ball joints \['knob'\] cannot be expressed in URDF"),
    (lambda x: x.replace('axis="1 1 0" range="-0.1 0.2" ref="0.05"', 'axis="1 1 0"'),
     "slide joint 'j/slide' has no range"),
    (lambda x: x.replace('name="follow"', 'name="j:slide"').replace('joint1="follow"', 'joint1="j:slide"'),
     "joint name 'j_slide' is used twice"),  # two MJCF names, one after sanitising
    (lambda x: x.replace('name="tip"', 'name="j_slide:link"'), "link name 'j_slide_link' is used twice"),
])
def test_toy_mjcf_refusals(tmp_path, edit, msg):
    with pytest.raises(ValueError, match=msg):
        build_toy(tmp_path, edit(TOY))


def test_missing_limits_and_unknown_names_are_named(tmp_path):
    m = mujoco.MjModel.from_xml_string(TOY)
    with pytest.raises(ValueError, match="joint 'j/slide': no effort/velocity limit"):
        mjcf_to_urdf(m, Options(root="world"))
    with pytest.raises(ValueError, match="no body 'nose'"):
        mjcf_to_urdf(m, Options(root="nose", limits=lambda _n: (1, 1)))
    with pytest.raises(ValueError, match="site 'laser' is not on the robot"):
        mjcf_to_urdf(m, Options(root="world", sites=("laser",), limits=lambda _n: (1, 1)))
    with pytest.raises(ValueError, match="mimic entry 'spin' -> 'ghost': no such joint"):
        mjcf_to_urdf(m, Options(root="world", mimic={"spin": ("ghost", 1, 0)}, limits=lambda _n: (1, 1)))
