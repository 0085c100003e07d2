import { InvigilatorError } from '../../../shared/errors';
import { psQuote } from '../../os/win32/ps-text';
import { isUsbInstanceId } from './instance-id';

/**
 * The PowerShell the adapter runs. Each script starts with a tag line so that
 * logs (and the recorded test session) can tell them apart; the only value
 * ever put into one is an instance id, validated and single-quoted.
 */
export type ScriptName = 'list-usb' | 'storage' | 'block' | 'allow' | 'readonly';

const TAG = /^# invigilator:([a-z-]+)\r?\n/;

export function scriptName(script: string): string | undefined {
  return TAG.exec(script)?.[1];
}

/** The `$id = '...'` line: the one place an instance id enters a script. */
function idLine(instanceId: string): string {
  if (!isUsbInstanceId(instanceId)) throw new InvigilatorError('INV_ERR_USB_DEVICE_GONE', 'not a USB instance id the OS reported');
  return `$id = ${psQuote(instanceId)}`;
}

/** Reads the instance id back out of a script this module built (for tests and logs). */
export function scriptInstanceId(script: string): string | undefined {
  const m = /^\$id = '((?:[^']|'')*)'$/m.exec(script);
  return m?.[1]?.replace(/''/g, "'");
}

/**
 * Present USB devices and their interfaces. Win32_PnPEntity lists present
 * devices only, disabled ones included (ConfigManagerErrorCode 22). The
 * descriptor's product string and the parent of each interface cost a
 * Get-PnpDeviceProperty call, so they are cached in the session, which lives
 * as long as the agent, and fetched only for ids not seen before; ids that
 * have gone are dropped, so a stick without a serial that reuses an id on the
 * same port is read afresh.
 */
export const LIST_USB = `# invigilator:list-usb
if ($null -eq $global:InvUsbProps) { $global:InvUsbProps = @{} }
$rows = @(Get-CimInstance -ClassName Win32_PnPEntity -Filter "PNPDeviceID LIKE 'USB\\\\%'")
$present = @{}
foreach ($r in $rows) { $present[$r.PNPDeviceID] = $true }
foreach ($k in @($global:InvUsbProps.Keys)) { if (-not $present.ContainsKey($k)) { $global:InvUsbProps.Remove($k) } }
$new = @($rows | Where-Object { -not $global:InvUsbProps.ContainsKey($_.PNPDeviceID) } | ForEach-Object { $_.PNPDeviceID })
if ($new.Count -gt 0) {
  foreach ($n in $new) { $global:InvUsbProps[$n] = @{} }
  foreach ($p in @(Get-PnpDeviceProperty -InstanceId $new -KeyName DEVPKEY_Device_BusReportedDeviceDesc, DEVPKEY_Device_Parent -ErrorAction SilentlyContinue)) {
    if ($global:InvUsbProps.ContainsKey($p.InstanceId)) { $global:InvUsbProps[$p.InstanceId][$p.KeyName] = $p.Data }
  }
}
$rows | ForEach-Object {
  $c = $global:InvUsbProps[$_.PNPDeviceID]
  [pscustomobject]@{
    PNPDeviceID = $_.PNPDeviceID; Name = $_.Name; Manufacturer = $_.Manufacturer; ConfigManagerErrorCode = $_.ConfigManagerErrorCode
    CompatibleID = $_.CompatibleID; HardwareID = $_.HardwareID
    BusReportedDeviceDesc = $c['DEVPKEY_Device_BusReportedDeviceDesc']; Parent = $c['DEVPKEY_Device_Parent']
  }
} | ConvertTo-Json -Depth 4 -Compress`;

/** Shared by the scripts that act on a device: stop early, saying so, when it has gone. */
const PRESENT_OR_GONE = `$dev = Get-PnpDevice -InstanceId $id -ErrorAction SilentlyContinue
if (-not $dev -or -not $dev.Present) { '{"gone":true}'; return }`;

/** The disks whose parent is the USB device: USBSTOR disks hang directly under the USB device node. */
const DEVICE_DISKS = `$disks = @(Get-CimInstance -ClassName Win32_DiskDrive | Where-Object {
  (Get-PnpDeviceProperty -InstanceId $_.PNPDeviceID -KeyName DEVPKEY_Device_Parent -ErrorAction SilentlyContinue).Data -eq $id
})`;

/**
 * Disk → partitions → logical disks, and BitLocker's view of each logical
 * disk from Win32_EncryptableVolume (needs an administrator, which the agent
 * service is; on editions without BitLocker the namespace is missing and
 * Encryption stays null).
 */
export function storageScript(instanceId: string): string {
  return `# invigilator:storage
${idLine(instanceId)}
$dev = Get-PnpDevice -InstanceId $id -ErrorAction SilentlyContinue
if (-not $dev -or -not $dev.Present) { ConvertTo-Json -Compress -InputObject @{ present = $false; disks = @() }; return }
${DEVICE_DISKS}
$out = @()
foreach ($d in $disks) {
  $vols = @()
  foreach ($p in @(Get-CimAssociatedInstance -InputObject $d -ResultClassName Win32_DiskPartition)) {
    $lds = @(Get-CimAssociatedInstance -InputObject $p -ResultClassName Win32_LogicalDisk)
    if ($lds.Count -eq 0) { $vols += @{ DeviceID = $p.DeviceID; FileSystem = $null; Size = $p.Size; DriveType = $null; Encryption = $null } }
    foreach ($l in $lds) {
      $e = Get-CimInstance -Namespace root/cimv2/Security/MicrosoftVolumeEncryption -ClassName Win32_EncryptableVolume -Filter ("DriveLetter='" + $l.DeviceID + "'") -ErrorAction SilentlyContinue
      $enc = $null
      if ($e) { $enc = @{ ProtectionStatus = $e.ProtectionStatus; ConversionStatus = $e.ConversionStatus; EncryptionMethod = $e.EncryptionMethod; VolumeType = $e.VolumeType } }
      $vols += @{ DeviceID = $l.DeviceID; FileSystem = $l.FileSystem; Size = $l.Size; DriveType = $l.DriveType; Encryption = $enc }
    }
  }
  $out += @{ Index = $d.Index; Model = $d.Model; Size = $d.Size; PNPDeviceID = $d.PNPDeviceID; volumes = $vols }
}
ConvertTo-Json -Depth 4 -Compress -InputObject @{ present = $true; disks = $out }`;
}

/**
 * Volumes first, so that nothing half-written stays cached, then the device.
 * Win32_Volume.Dismount(force, permanent = false) rather than mountvol /p:
 * /p takes the volume offline, which Windows remembers for that volume.
 * A disabled device stays disabled when it is plugged in again, until allow.
 */
export function blockScript(instanceId: string): string {
  return `# invigilator:block
${idLine(instanceId)}
${PRESENT_OR_GONE}
${DEVICE_DISKS}
foreach ($d in $disks) {
  foreach ($p in @(Get-CimAssociatedInstance -InputObject $d -ResultClassName Win32_DiskPartition)) {
    foreach ($l in @(Get-CimAssociatedInstance -InputObject $p -ResultClassName Win32_LogicalDisk)) {
      $v = Get-CimInstance -ClassName Win32_Volume -Filter ("DriveLetter='" + $l.DeviceID + "'")
      if ($v) { Invoke-CimMethod -InputObject $v -MethodName Dismount -Arguments @{ Force = $true; Permanent = $false } | Out-Null }
    }
  }
}
Disable-PnpDevice -InstanceId $id -Confirm:$false
'{"done":true}'`;
}

/** Nothing to do for a device that works; one an earlier block disabled (CM_PROB_DISABLED, 22) is enabled again. */
export function allowScript(instanceId: string): string {
  return `# invigilator:allow
${idLine(instanceId)}
${PRESENT_OR_GONE}
if ($dev.ConfigManagerErrorCode -eq 22) { Enable-PnpDevice -InstanceId $id -Confirm:$false; '{"done":true,"enabled":true}' } else { '{"done":true,"enabled":false}' }`;
}

/**
 * LIMITATION: Windows has no per-device read-only switch. This is the
 * documented "Removable Disks: Deny write access" policy, which applies to
 * every removable disk on the machine, not just this one, and stays until
 * removed. The device is then disabled and enabled so that its volumes are
 * mounted again under the policy.
 */
export const DENY_WRITE_KEY = 'HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices\\{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}';

export function readOnlyScript(instanceId: string): string {
  return `# invigilator:readonly
${idLine(instanceId)}
${PRESENT_OR_GONE}
$key = '${DENY_WRITE_KEY}'
New-Item -Path $key -Force | Out-Null
New-ItemProperty -Path $key -Name Deny_Write -PropertyType DWord -Value 1 -Force | Out-Null
Disable-PnpDevice -InstanceId $id -Confirm:$false
Enable-PnpDevice -InstanceId $id -Confirm:$false
'{"done":true}'`;
}
