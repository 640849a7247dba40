; Inno Setup 6 script: Windows installer for the cspine one-folder build.
;
; Build on Windows (x64) from the repository root:
;   .venv\Scripts\python installer\build.py --no-tarball      -> dist\cspine\ (cspine.exe, cspine-cli.exe)
;   "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" /DAppVersion=0.1.0 installer\windows\cspine.iss
; Output: dist\cspine-<version>-windows-x64-setup.exe
;
; Installs per user by default (no administrator rights; %LOCALAPPDATA%\Programs\cspine), or for
; all users when the installing user picks it (Program Files). Nothing is downloaded. The app
; keeps its data per user in %LOCALAPPDATA%\cspine (platformdirs: data, Cache\, Logs\) - never in
; the install folder. Uninstall removes the program; it asks whether to delete that data too
; (default: keep; a silent uninstall always keeps it).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "cspine"
#define SourceDir "..\..\dist\cspine"

[Setup]
AppId={{6B8C1B52-3E0A-4F57-9A4C-0C5E1D7A2C11}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=cspine
AppComments=Cervical-spine CT fracture detection - decision support, not for diagnostic use
DefaultDirName={autopf}\cspine
DefaultGroupName=cspine
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=cspine-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\assets\icons\cspine.ico
UninstallDisplayIcon={app}\cspine.exe
UninstallDisplayName={#AppName} {#AppVersion}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; the whole one-folder build: cspine.exe (windowed), cspine-cli.exe (console), _internal\ (runtime, model, demo study)
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\cspine"; Filename: "{app}\cspine.exe"; Comment: "Cervical-spine CT fracture detection (not for diagnostic use)"
Name: "{autoprograms}\cspine self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\cspine-cli.exe"" --self-test"; IconFilename: "{app}\cspine.exe"; Comment: "Check this installation offline"
Name: "{autodesktop}\cspine"; Filename: "{app}\cspine.exe"; Tasks: desktopicon

[Run]
Filename: "{cmd}"; Parameters: "/k ""{app}\cspine-cli.exe"" --self-test"; Description: "Run the self-test now (about a minute, offline)"; Flags: postinstall unchecked skipifsilent
Filename: "{app}\cspine.exe"; Description: "{cm:LaunchProgram,cspine}"; Flags: postinstall nowait skipifsilent

[UninstallDelete]
; only the install folder (files the app may have left there, e.g. __pycache__); data lives elsewhere
Type: filesandordirs; Name: "{app}"

[Code]
const
  DataHint = 'studies, user accounts, audit trail, settings, cache and logs';

function UserDataDir(): String;
begin
  { platformdirs.user_data_dir("cspine", appauthor=False) on Windows }
  Result := ExpandConstant('{localappdata}\cspine');
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if (CurUninstallStep = usPostUninstall) and DirExists(UserDataDir()) then
  begin
    if UninstallSilent() then
      Exit; { a silent uninstall never deletes data }
    if MsgBox('cspine has been removed.' + #13#10 + #13#10 +
              'Also delete your cspine data (' + DataHint + ') in' + #13#10 +
              UserDataDir() + ' ?' + #13#10 + #13#10 +
              'Choose No to keep it for a later installation.',
              mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
      DelTree(UserDataDir(), True, True, True);
  end;
end;
